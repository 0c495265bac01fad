/**
 * `generations`: its plan (selection, the command per host), and the command
 * line against the recording executor: listings, a host that does not
 * answer, --json against its published schema, --dry-run, Ctrl-C.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localDateTime, runGenerationsCli } from '../../lib/cli/generations.ts';
import type { Io } from '../../lib/cli/io.ts';
import { UsageError } from '../../lib/errors.ts';
import type { CommandResult, CommandSpec, Executor, RunOptions } from '../../lib/exec/types.ts';
import { runGenerations } from '../../lib/ops/generations.ts';
import { DEFAULT_CONCURRENCY } from '../../lib/plan/concurrency.ts';
import { planGenerations } from '../../lib/plan/generations.ts';
import { LIST_GENERATIONS } from '../../lib/remote/generations.ts';
import { fleetInventory, fleetInventoryText, repoRoot } from '../helpers/fixtures.ts';
import { RecordingExecutor, type Responder, remoteWords, when } from '../helpers/recording-executor.ts';

const A = '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-opi01';
const B = '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-nixos-system-opi01';
const T1 = 1_764_400_000;
const T2 = 1_764_403_600;

/** What LIST_GENERATIONS prints on a host with `generations` ([number, mtime, toplevel]). */
function listing(profile: number | undefined, current: string, booted: string, generations: readonly (readonly [number, number, string])[]): string {
  return [
    'format=avalanche-generations-1',
    'profile-name=system',
    `profile-link=${profile === undefined ? '' : `system-${profile}-link`}`,
    `current-system=${current}`,
    `booted-system=${booted}`,
    ...generations.map(([n, t, p]) => `generation=${n} ${t} ${p}`),
    '',
  ].join('\n');
}

const TWO = listing(2, B, A, [[1, T1, A], [2, T2, B]]);
const unreachable = (host: string): Responder => when([`deploy@${host}.internal`], { exitCode: 255, stderr: `ssh: connect to host ${host}.internal port 22: Connection refused\r\n` });
const answering: Responder = when(['avalanche-generations'], { stdout: TWO });

let inventoryPath: string;
let savedTz: string | undefined;
beforeAll(async () => {
  inventoryPath = join(await mkdtemp(join(tmpdir(), 'generations-')), 'hosts.json');
  await writeFile(inventoryPath, fleetInventoryText());
  // Dates print in local time: pin the zone.
  savedTz = process.env.TZ;
  process.env.TZ = 'UTC';
});
afterAll(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

async function generations(args: string[], executor: Executor = new RecordingExecutor([answering])) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), isTTY: false, env: { CI: 'true' } };
  const code = await runGenerationsCli(['--inventory', inventoryPath, ...args], io, { executor });
  return { code, stdout: out.join('\n'), stderr: err.join('\n'), out };
}

describe('the generations plan', () => {
  const inventory = fleetInventory();

  it('asks every host by default, in inventory order, as its deploy user, bounded by the short-command timeout', () => {
    const plan = planGenerations(inventory, { on: [], exclude: [] });
    expect(plan.concurrency).toBe(DEFAULT_CONCURRENCY);
    expect(plan.hosts.map((h) => h.name)).toEqual(['opi01', 'opi02', 'opi03']);
    const opi01 = plan.hosts[0]!;
    expect(opi01.target).toMatchObject({ user: 'deploy', address: { host: 'opi01.internal' } });
    expect(opi01.command.timeoutMs).toBe((10 * 2 + 10) * 1000);
    expect(opi01.command.argv.slice(0, 1)).toEqual(['ssh']);
    expect(opi01.command.argv).toContain('deploy@opi01.internal');
    // no root: the listing reads world-readable links
    expect(remoteWords(opi01.command.argv)).toEqual(['sh', '-c', LIST_GENERATIONS, 'avalanche-generations', '/nix/var/nix/profiles/system', '/run/current-system', '/run/booted-system']);
  });

  it('--on and --exclude select, with globs, tags and comma lists', () => {
    const names = (on: string[], exclude: string[] = []) => planGenerations(inventory, { on, exclude }).hosts.map((h) => h.name);
    expect(names(['opi0*'], ['opi02'])).toEqual(['opi01', 'opi03']);
    expect(names(['opi03,opi01'])).toEqual(['opi01', 'opi03']);
    expect(names(['@k3s'], ['opi01,opi03'])).toEqual(['opi02']);
    expect(() => names(['opi09'])).toThrow(UsageError);
    expect(() => names([], ['opi0*'])).toThrow(UsageError);
    expect(planGenerations(inventory, { on: [], exclude: [] }, { concurrency: 2 }).concurrency).toBe(2);
  });

  it('runs at most `concurrency` hosts at once', async () => {
    let active = 0;
    let most = 0;
    const executor: Executor = {
      log: [],
      async run(spec: CommandSpec): Promise<CommandResult> {
        active += 1;
        most = Math.max(most, active);
        await new Promise((resolve) => setTimeout(resolve, 10));
        active -= 1;
        return { argv: spec.argv, exitCode: 0, signal: null, stdout: TWO, stderr: '', startedAt: 0, durationMs: 10, timedOut: false, aborted: false };
      },
    };
    const results = await runGenerations(planGenerations(inventory, { on: [], exclude: [] }, { concurrency: 2 }), { executor, signal: new AbortController().signal });
    expect(results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(most).toBe(2);
  });
});

describe('generations command line', () => {
  it('--help prints the usage with exit 0 and runs nothing', async () => {
    const executor = new RecordingExecutor();
    const { code, stdout } = await generations(['--help'], executor);
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: npx tsx scripts/generations.ts [options] [host|@tag|glob ...]      (just nix generations)');
    expect(stdout).toContain('--on <selector>');
    expect(stdout).toContain('--dry-run');
    expect(executor.calls).toEqual([]);
  });

  it('usage errors exit 2, in JSON too', async () => {
    expect((await generations(['--concurrency', '0'])).code).toBe(2);
    expect((await generations(['--frobnicate'])).code).toBe(2);
    const unknown = await generations(['--json', 'opi09']);
    expect(unknown.code).toBe(2);
    expect(JSON.parse(unknown.stdout)).toMatchObject({ outcome: 'error', exitCode: 2, error: { type: 'UsageError', message: expect.stringContaining('opi09') } });
  });

  it('lists each host\'s generations as a table with its flags, and exits 0 when all answered', async () => {
    const { code, stdout, out } = await generations([]);
    expect(code).toBe(0);
    expect(out).toHaveLength(4);
    expect(out[0]).toBe(
      [
        'opi01 (deploy@opi01.internal)',
        `  generation  date                 ${'toplevel'.padEnd(A.length)}  flags`,
        `           1  2025-11-29 07:06:40  ${A}  booted`,
        `           2  2025-11-29 08:06:40  ${B}  current, boot default`,
        '',
      ].join('\n'),
    );
    expect(stdout).toMatch(/generations: 3 of 3 hosts answered$/);
  });

  it('shows a host that does not answer with the reason, lists the others, and exits 1', async () => {
    const executor = new RecordingExecutor([unreachable('opi02'), answering]);
    const { code, out } = await generations([], executor);
    expect(code).toBe(1);
    expect(executor.calls).toHaveLength(3);
    expect(out[0]).toMatch(/^opi01 /);
    expect(out[1]).toBe('opi02 (deploy@opi02.internal): did not answer: ssh exited with 255\n  | ssh: connect to host opi02.internal port 22: Connection refused\n');
    expect(out[2]).toMatch(/^opi03 \(deploy@opi03.internal\)\n  generation/);
    expect(out[3]).toBe('generations: 2 of 3 hosts answered; no answer from opi02');
  });

  it('says what a never-deployed host has, and a running system that is no generation', async () => {
    const executor = new RecordingExecutor([
      when(['deploy@opi01.internal'], { stdout: listing(undefined, '', '', []) }),
      when(['deploy@opi02.internal'], { stdout: listing(1, B, A, [[1, T1, A]]) }),
    ]);
    const { code, out } = await generations(['opi01', '--on', 'opi02'], executor);
    expect(code).toBe(0);
    expect(out[0]).toContain('opi01 (deploy@opi01.internal)\n  no system generations (no system profile: never deployed)');
    expect(out[1]).toContain(`  running ${B}: not a generation of the system profile`);
  });

  it('a reply that is not the listing is a failure, not an empty host', async () => {
    const executor = new RecordingExecutor([when(['avalanche-generations'], { stdout: 'Welcome to opi01!\n' })]);
    const { code, out } = await generations(['opi01', '--json'], executor);
    expect(code).toBe(1);
    expect(JSON.parse(out[0]!).hosts[0]).toMatchObject({ host: 'opi01', ok: false, error: { exitCode: 0, status: expect.stringContaining('not a generation listing') } });
  });

  it('--json: one document, valid against schemas/generations.schema.json, a failed host with its command and output', async () => {
    const validate = new Ajv2020({ strict: false }).compile(JSON.parse(readFileSync(join(repoRoot, 'schemas/generations.schema.json'), 'utf8')));
    const executor = new RecordingExecutor([unreachable('opi02'), answering]);
    const { code, out } = await generations(['--json', '--on', 'opi0*', '--exclude', 'opi03'], executor);
    expect(code).toBe(1);
    expect(out).toHaveLength(1);
    const json = JSON.parse(out[0]!);
    expect(validate(json), JSON.stringify(validate.errors)).toBe(true);
    expect(json.hosts).toEqual([
      {
        host: 'opi01',
        ok: true,
        generations: [
          { number: 1, createdAt: '2025-11-29T07:06:40.000Z', toplevel: A, bootDefault: false, current: false, booted: true },
          { number: 2, createdAt: '2025-11-29T08:06:40.000Z', toplevel: B, bootDefault: true, current: true, booted: false },
        ],
        profileGeneration: 2,
        currentSystem: B,
        bootedSystem: A,
      },
      {
        host: 'opi02',
        ok: false,
        error: {
          command: expect.stringMatching(/^ssh .* deploy@opi02\.internal -- /),
          exitCode: 255,
          status: 'ssh exited with 255',
          outputTail: ['ssh: connect to host opi02.internal port 22: Connection refused'],
        },
      },
    ]);
  });

  it('--dry-run prints the exact ssh command per host and runs nothing; with --json, the plan', async () => {
    const executor = new RecordingExecutor();
    const text = await generations(['--dry-run', 'opi01', 'opi03'], executor);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^plan: list the system generations of opi01, opi03 \(at most 10 at a time, each bounded to 30 s; nothing changes on the hosts\)\n  opi01 \(as deploy@opi01.internal\):\n    \$ ssh /);
    const json = await generations(['--dry-run', '--json', '--concurrency', '3', 'opi01'], executor);
    const validate = new Ajv2020({ strict: false }).compile(JSON.parse(readFileSync(join(repoRoot, 'schemas/generations.schema.json'), 'utf8')));
    const doc = JSON.parse(json.stdout);
    expect(validate(doc)).toBe(true);
    expect(doc.plan.concurrency).toBe(3);
    expect(doc.plan.hosts[0].command.argv).toEqual(planGenerations(fleetInventory(), { on: ['opi01'], exclude: [] }).hosts[0]!.command.argv);
    expect(executor.calls).toEqual([]);
  });

  it('prints hosts in inventory order even when a later one answers first', async () => {
    const gates = new Map<string, () => void>();
    const executor: Executor = {
      log: [],
      run(spec: CommandSpec): Promise<CommandResult> {
        const host = spec.argv.find((a) => a.startsWith('deploy@'))!;
        return new Promise((resolve) =>
          gates.set(host, () => resolve({ argv: spec.argv, exitCode: 0, signal: null, stdout: TWO, stderr: '', startedAt: 0, durationMs: 1, timedOut: false, aborted: false })),
        );
      },
    };
    const running = generations(['opi01', 'opi02'], executor);
    await waitFor(() => gates.size === 2);
    gates.get('deploy@opi02.internal')!();
    await new Promise((resolve) => setTimeout(resolve, 5));
    gates.get('deploy@opi01.internal')!();
    const { out } = await running;
    expect(out.map((o) => o.split(' ')[0])).toEqual(['opi01', 'opi02', 'generations:']);
  });

  it('Ctrl-C stops the running listings and exits 130', async () => {
    let started = 0;
    const executor: Executor = {
      log: [],
      run(spec: CommandSpec, options: RunOptions = {}): Promise<CommandResult> {
        started += 1;
        return new Promise((resolve) =>
          options.signal!.addEventListener('abort', () =>
            resolve({ argv: spec.argv, exitCode: null, signal: 'SIGTERM', stdout: '', stderr: '', startedAt: 0, durationMs: 1, timedOut: false, aborted: true }),
          ),
        );
      },
    };
    const running = generations(['--concurrency', '1'], executor);
    await waitFor(() => started === 1);
    process.emit('SIGINT', 'SIGINT');
    const { code, stderr } = await running;
    expect(code).toBe(130);
    expect(stderr).toContain('generations: interrupted');
    expect(started).toBe(1);
  });

  it('local dates are the machine\'s zone', () => {
    expect(localDateTime('2025-11-29T07:06:40.000Z')).toBe('2025-11-29 07:06:40');
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i += 1) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(condition()).toBe(true);
}
