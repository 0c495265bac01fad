import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Io } from '../../lib/cli/io.ts';
import { runDeployCli } from '../../lib/cli/deploy.ts';
import { fleetInventoryText, repoRoot, fleetInventoryPath } from '../helpers/fixtures.ts';

async function cli(command: 'deploy' | 'deploy-all', args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), isTTY: false, env: { CI: 'true' } };
  const code = await runDeployCli(command, ['--inventory', fleetInventoryPath(), ...args], io);
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('command line', () => {
  it('prints help with exit 0', async () => {
    const { code, stdout } = await cli('deploy', ['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: npx tsx scripts/deploy.ts <host|@tag|glob…> [options]');
    expect(stdout).toContain('--dry-run');
    expect(stdout).toContain('--on <selector>');
    expect(stdout).toContain('--exclude <selector>');
    expect((await cli('deploy-all', ['-h'])).stdout).toContain('--tag <tag>          the same as --on @<tag>');
  });

  it('exits 2 with a clear message for usage errors', async () => {
    expect(await cli('deploy', ['opi04'])).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown host 'opi04'; known: opi01, opi02, opi03; tags: @k3s, @opi") });
    expect(await cli('deploy-all', ['--exclude', 'opi0*'])).toMatchObject({ code: 2, stderr: expect.stringContaining("nothing left: --exclude 'opi0*' removes every host") });
    expect(await cli('deploy', [])).toMatchObject({ code: 2, stderr: expect.stringContaining('name at least one host') });
    expect(await cli('deploy', ['--goal', 'reboot', 'opi01'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--goal must be one of switch, boot, test, dry-activate') });
    expect(await cli('deploy', ['--concurrency', '0', 'opi01'])).toMatchObject({ code: 2 });
    expect(await cli('deploy', ['--flake', '.#evil', 'opi01'])).toMatchObject({ code: 2, stderr: expect.stringContaining("--flake '.#evil'") });
    expect(await cli('deploy-all', ['opi01'])).toMatchObject({ code: 2, stderr: expect.stringContaining('deploy-all takes no host names') });
    expect(await cli('deploy', ['--frobnicate', 'opi01'])).toMatchObject({ code: 2, stderr: expect.stringContaining("Unknown option '--frobnicate'") });
  });

  it('--reboot goes with --goal boot only (exit 2 saying why), and the help says what it does', async () => {
    expect(await cli('deploy-all', ['--reboot', '--dry-run'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--reboot goes with --goal boot (got switch): boot sets the new generation as the boot default') });
    expect(await cli('deploy', ['--goal', 'test', '--reboot', 'opi01'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--reboot goes with --goal boot (got test)') });
    const planned = await cli('deploy-all', ['--goal', 'boot', '--reboot', '--rolling', '--dry-run']);
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.stdout).toContain('reboot into the new boot default');
    expect((await cli('deploy-all', ['--help'])).stdout).toMatch(/--reboot +with --goal boot: reboot each host/);
  });

  it('exits 2 before anything runs when --report-dir cannot be written (not after the build)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-'));
    await writeFile(join(dir, 'a-file'), '');
    const { code, stderr } = await cli('deploy', ['--report-dir', join(dir, 'a-file', 'runs'), 'opi01']);
    expect(code).toBe(2);
    expect(stderr).toContain(`--report-dir ${join(dir, 'a-file', 'runs')}: cannot write run reports and history there (ENOTDIR`);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('a --report-dir whose making never settles (under /proc) is an error in bounded time, not a hang', async () => {
    const { whyNotWritable } = await import('../../lib/util/writable.ts');
    expect(await whyNotWritable('/proc/avalanche-no-such-dir', 500)).toMatch(/did not finish within 0.5 s|ENOENT|EACCES|EPERM/);
  });

  it('exits 2 for a bad inventory, naming the path, with no stack trace', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-'));
    const json = JSON.parse(fleetInventoryText());
    json.cache.publicKey = 'not-a-key';
    await writeFile(join(dir, 'hosts.json'), JSON.stringify(json));
    const { code, stderr } = await cli('deploy-all', ['--inventory', join(dir, 'hosts.json'), '--dry-run']);
    expect(code).toBe(2);
    expect(stderr).toContain('cache.publicKey: must be "<name>:<base64 of a 32-byte ed25519 key>"');
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('prints the plan for --dry-run and runs nothing', async () => {
    const { code, stdout } = await cli('deploy', ['--dry-run', 'opi03']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^1\. preflight$/m);
    expect(stdout).toMatch(/^6\. report/m);
    expect(stdout).toContain('nixos-rebuild switch --flake');
  });

  it('deploys what the selectors name: positional names and @tags, --on, globs, --exclude, --tag', async () => {
    const planned = async (command: 'deploy' | 'deploy-all', args: string[]) => {
      const { code, stdout, stderr } = await cli(command, ['--dry-run', '--json', ...args]);
      expect(code, stderr).toBe(0);
      return JSON.parse(stdout).plan.hosts as string[];
    };
    expect(await planned('deploy', ['opi03'])).toEqual(['opi03']);
    expect(await planned('deploy', ['@k3s', '--exclude', 'opi02'])).toEqual(['opi01', 'opi03']);
    expect(await planned('deploy', ['--on', 'opi0[12]'])).toEqual(['opi01', 'opi02']);
    expect(await planned('deploy', ['--on', 'opi03', '--on', 'opi01'])).toEqual(['opi01', 'opi03']);
    expect(await planned('deploy-all', [])).toEqual(['opi01', 'opi02', 'opi03']);
    expect(await planned('deploy-all', ['--on', 'opi0*', '--exclude', 'opi01,opi03'])).toEqual(['opi02']);
    expect(await planned('deploy-all', ['--tag', 'k3s', '--exclude', 'opi03'])).toEqual(['opi01', 'opi02']);
  });

  it('prints the plan as JSON with --dry-run --json', async () => {
    const { code, stdout } = await cli('deploy-all', ['--dry-run', '--json', '--goal', 'boot', '--concurrency', '1']);
    expect(code).toBe(0);
    const parsed = JSON.parse(stdout);
    expect(parsed.plan.hosts).toEqual(['opi01', 'opi02', 'opi03']);
    expect(parsed.plan.deploy.concurrency).toBe(1);
    expect(parsed.plan.deploy.hosts.opi01.rebuild.argv[1]).toBe('boot');
  });

  it('reports errors as JSON with --json', async () => {
    const { code, stdout } = await cli('deploy', ['--json', 'opi09']);
    expect(code).toBe(2);
    expect(JSON.parse(stdout)).toMatchObject({ outcome: 'error', exitCode: 2, error: { type: 'UsageError', message: "unknown host 'opi09'; known: opi01, opi02, opi03; tags: @k3s, @opi" } });
  });

  it('answers a usage error under --json with a JSON error object on stdout only, wherever --json is', async () => {
    for (const args of [
      ['--json', '--goal', 'reboot', 'opi01'],
      ['opi01', '--frobnicate', '--json'],
      ['--json', '--concurrency', '0', 'opi01'],
    ]) {
      const { code, stdout, stderr } = await cli('deploy', args);
      expect(code).toBe(2);
      expect(stderr).toBe('');
      expect(JSON.parse(stdout)).toEqual({ outcome: 'error', exitCode: 2, error: { type: 'UsageError', message: expect.any(String), hints: [] } });
    }
    expect(JSON.parse((await cli('deploy', ['--json', '--goal', 'reboot', 'opi01'])).stdout).error.message).toContain('--goal must be one of switch, boot, test, dry-activate');
    expect(JSON.parse((await cli('deploy-all', ['--json', 'opi01'])).stdout).error.message).toContain('deploy-all takes no host names');
    // after "--" it is an argument, not the flag
    expect(await cli('deploy', ['--frobnicate', '--', '--json'])).toMatchObject({ code: 2, stdout: '', stderr: expect.stringContaining("Unknown option '--frobnicate'") });
  });
});
