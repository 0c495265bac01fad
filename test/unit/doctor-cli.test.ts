import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterEach, describe, expect, it } from 'vitest';
import { runDoctorCli } from '../../lib/cli/doctor.ts';
import type { Io } from '../../lib/cli/io.ts';
import { FIXTURE_KEY, fixture, fleetInventoryText, repoRoot } from '../helpers/fixtures.ts';
import { fleet, NEVER_DEPLOYED, NOW, onRemote } from '../helpers/doctor-fleet.ts';
import { startTestCache, type TestCache } from '../helpers/http-cache.ts';
import { RecordingExecutor, type Responder } from '../helpers/recording-executor.ts';

let cache: TestCache | undefined;
afterEach(async () => {
  await cache?.close();
  cache = undefined;
});

async function inventoryFile(edit: (json: any) => void = () => {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'doctor-'));
  const json = JSON.parse(fleetInventoryText());
  cache ??= await startTestCache({ '/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn.narinfo': fixture('narinfo/signed.narinfo') });
  json.cache.url = cache.url;
  json.cache.publicKey = FIXTURE_KEY;
  edit(json);
  await writeFile(join(dir, 'hosts.json'), JSON.stringify(json));
  return join(dir, 'hosts.json');
}

async function doctor(args: string[], responders: Responder[] = fleet()) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), isTTY: false, env: { CI: 'true' } };
  const executor = new RecordingExecutor(responders);
  const code = await runDoctorCli(args, io, { executor, hostname: 'hawk', now: NOW });
  return { code, stdout: out.join('\n'), stderr: err.join('\n'), executor };
}

describe('doctor command line', () => {
  it('prints help with exit 0 and runs nothing', async () => {
    const { code, stdout, executor } = await doctor(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: npx tsx scripts/doctor.ts [<host|@tag|glob…>] [options]      (just nix doctor)');
    expect(stdout).toContain('--on <selector>');
    expect(executor.calls).toEqual([]);
  });

  it('exits 2 for usage and inventory errors, without a stack trace', async () => {
    const unknown = await doctor(['--frobnicate']);
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringContaining("Unknown option '--frobnicate'") });
    expect(await doctor(['--inventory', await inventoryFile(), 'opi07'])).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown host 'opi07'; known: opi01, opi02, opi03") });
    const missing = await doctor(['--inventory', '/nonexistent/hosts.json']);
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringContaining('inventory not found: /nonexistent/hosts.json') });
    const bad = await doctor(['--inventory', await inventoryFile((json) => (json.cache.gcRootDir = 'relative/dir'))]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('cache.gcRootDir: must be an absolute path');
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const json = await doctor(['--json', '--inventory', '/nonexistent/hosts.json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ outcome: 'error', exitCode: 2, error: { type: 'InventoryError' } });
  });

  it('exits 0 on a healthy fleet, one ✔ line per check with what it tried', async () => {
    const { code, stdout } = await doctor(['--inventory', await inventoryFile()]);
    expect(code).toBe(0);
    const verdicts = stdout.split('\n').filter((line) => /^[✔✖⚠↓] /.test(line));
    expect(verdicts).toHaveLength(11);
    expect(verdicts.every((line) => line.startsWith('✔ '))).toBe(true);
    expect(stdout).toContain(`✔ cache ${cache!.url} answers: StoreDir: /nix/store, Priority: 30\n    GET ${cache!.url}/nix-cache-info`);
    expect(stdout).toContain('    $ find /nix/var/nix/gcroots/arm-cache -maxdepth 1');
    expect(stdout).toMatch(/doctor: 11 passed, 0 failed, 0 warned — healthy$/);
  });

  it('checks the builders and targets --on selects (positional selectors too), and the fleet-wide checks', async () => {
    const titles = (stdout: string) => stdout.split('\n').filter((line) => /^[✔✖⚠↓] /.test(line));
    const onOne = await doctor(['--inventory', await inventoryFile(), '--on', 'opi0*', '--exclude', 'opi01,opi03']);
    expect(onOne.code).toBe(0);
    expect(titles(onOne.stdout)).toHaveLength(7);
    expect(onOne.stdout).toContain('opi02');
    expect(onOne.stdout).not.toMatch(/opi0[13]/);
    expect(onOne.executor.calls.some((call) => call.argv.join(' ').includes('opi01.internal'))).toBe(false);
    const positional = await doctor(['--inventory', await inventoryFile(), 'opi02']);
    expect(titles(positional.stdout)).toEqual(titles(onOne.stdout));
  });

  it('exits 1 naming the problem and the document\'s hint', async () => {
    const denied = onRemote('nix-builder@opi02.internal', 'nix-store', { exitCode: 255, stderr: 'Permission denied (publickey).' });
    const { code, stdout } = await doctor(['--inventory', await inventoryFile()], fleet(denied));
    expect(code).toBe(1);
    expect(stdout).toContain('✖ builder opi02 builds aarch64-linux as nix-builder@opi02.internal: ssh exited with 255');
    expect(stdout).toContain('    | Permission denied (publickey).');
    expect(stdout).toContain('    hint: SSH key issue: test with ssh -i /etc/nix/builder-key nix-builder@opi02.internal');
    expect(stdout).toMatch(/doctor: 10 passed, 1 failed, 0 warned — problems found$/);
  });

  it('prints only JSON with --json; warnings do not fail', async () => {
    const neverDeployed = onRemote('deploy@opi03.internal', 'sh -c', NEVER_DEPLOYED);
    const { code, stdout } = await doctor(['--json', '--inventory', await inventoryFile()], fleet(neverDeployed));
    expect(code).toBe(0);
    const parsed = JSON.parse(stdout);
    expect(parsed).toMatchObject({ outcome: 'healthy', exitCode: 0, counts: { pass: 10, warn: 1, fail: 0, skip: 0 } });
    expect(parsed.checks.find((c: { id: string }) => c.id === 'target:opi03')).toMatchObject({
      status: 'warn',
      summary: 'no /nix/var/nix/profiles/system yet',
      // The generation probe, then the deploy user's sudo -n.
      tried: [expect.stringContaining('avalanche-probe'), expect.stringMatching(/deploy@opi03\.internal -- 'sudo -n -- true'$/)],
      hints: [expect.stringMatching(/^No system profile yet/)],
    });
  });

  it('answers --json as schemas/doctor.schema.json says, healthy or not', async () => {
    const validate = new Ajv2020({ strict: false }).compile(JSON.parse(readFileSync(join(repoRoot, 'schemas/doctor.schema.json'), 'utf8')));
    const neverDeployed = onRemote('deploy@opi03.internal', 'sh -c', NEVER_DEPLOYED);
    const denied = onRemote('nix-builder@opi02.internal', 'nix-store', { exitCode: 255, stderr: 'Permission denied (publickey).' });
    for (const [responders, outcome, exitCode] of [[fleet(neverDeployed), 'healthy', 0], [fleet(denied), 'problems', 1]] as const) {
      const { code, stdout } = await doctor(['--json', '--inventory', await inventoryFile()], responders);
      expect(code).toBe(exitCode);
      const parsed = JSON.parse(stdout);
      expect(parsed).toMatchObject({ outcome, exitCode });
      expect(validate(parsed), JSON.stringify(validate.errors)).toBe(true);
      expect(Object.keys(parsed.checks[0])).toEqual(['id', 'title', 'status', 'summary', 'tried', 'details', 'hints']);
      expect(validate({ ...parsed, checks: [{ ...parsed.checks[0], extra: 1 }] })).toBe(false);
    }
  });

  it('lists the GC roots over SSH when not on the coordinator', async () => {
    const out: string[] = [];
    const io: Io = { stdout: (t) => out.push(t), stderr: () => {}, isTTY: false, env: {} };
    const executor = new RecordingExecutor(fleet());
    const code = await runDoctorCli(['--inventory', await inventoryFile()], io, { executor, hostname: 'ci-runner', now: NOW });
    expect(code).toBe(0);
    expect(executor.calls.some((c) => c.argv[0] === 'ssh' && c.argv.includes('root@hawk.internal') && c.argv.at(-1)!.startsWith('find /nix/var/nix/gcroots/arm-cache'))).toBe(true);
  });

  it('answers a usage error under --json with a JSON error object on stdout only, as the deploy does', async () => {
    for (const args of [['--json', '--frobnicate'], ['--frobnicate', '--json'], ['--json', '--on', 'opi07']]) {
      const { code, stdout, stderr } = await doctor(args);
      expect(code).toBe(2);
      expect(stderr).toBe('');
      expect(JSON.parse(stdout)).toEqual({ outcome: 'error', exitCode: 2, error: { type: 'UsageError', message: expect.any(String), hints: [] } });
    }
  });

  it('colours by the environment it is given: none with NO_COLOR on a terminal, some with FORCE_COLOR without one', async () => {
    const run = async (isTTY: boolean, env: NodeJS.ProcessEnv) => {
      const out: string[] = [];
      const denied = onRemote('nix-builder@opi02.internal', 'nix-store', { exitCode: 255, stderr: 'Permission denied (publickey).' });
      const io: Io = { stdout: (t) => out.push(t), stderr: (t) => out.push(t), isTTY, env };
      const code = await runDoctorCli(['--inventory', await inventoryFile()], io, { executor: new RecordingExecutor(fleet(denied)), hostname: 'hawk', now: NOW });
      expect(code).toBe(1);
      return out.join('\n');
    };
    const sgr = /\u001b\[[0-9;]*m/;
    const plain = await run(true, { TERM: 'xterm-256color', NO_COLOR: '1' });
    expect(plain).not.toMatch(/\u001b\[/);
    expect(plain).toContain('✖ builder opi02 builds aarch64-linux');
    expect(await run(false, { FORCE_COLOR: '1', NO_COLOR: '' })).toMatch(sgr);
    expect(await run(true, { TERM: 'xterm-256color' })).toMatch(sgr);
    expect(await run(false, { TERM: 'xterm-256color' })).not.toMatch(/\u001b\[/);
  });
});
