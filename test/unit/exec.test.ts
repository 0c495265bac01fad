/** exec (issue 13 #5): its plan, the run over the hosts, and its command line with a recording executor. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { hostStatus, parseExecArgs, runExecCli } from '../../lib/cli/exec.ts';
import type { Io } from '../../lib/cli/io.ts';
import type { CommandResult, CommandSpec, Executor, RunOptions } from '../../lib/exec/types.ts';
import { hostOutcome, runExec } from '../../lib/ops/exec.ts';
import { DEFAULT_CONCURRENCY } from '../../lib/plan/concurrency.ts';
import { EXEC_DEFAULT_TIMEOUT_SECONDS, planExec } from '../../lib/plan/exec.ts';
import { fleetInventory, fleetInventoryText, repoRoot } from '../helpers/fixtures.ts';
import { RecordingExecutor, remoteWords, type Responder, when } from '../helpers/recording-executor.ts';

const HOSTS = ['opi01', 'opi02', 'opi03'];
/** The words `timeout` runs the command with on the host (lib/plan/exec.ts boundedArgv). */
const bounded = (seconds: number, ...argv: string[]) => ['timeout', '--kill-after=10', String(seconds), ...argv];

/** What a real POSIX sh makes of ssh's remote command line: its words, each as one argument (NUL-separated, so a newline inside one shows). */
function shWords(line: string): string[] {
  return execFileSync('sh', ['-c', `set -- ${line}; printf '%s\\0' "$@"`], { encoding: 'utf8' }).split('\0').slice(0, -1);
}

describe('exec plan', () => {
  const inventory = fleetInventory();

  it('runs the argv as the deploy user, bounded on the host; --sudo puts sudo -n -- in front inside the remote command', () => {
    const plain = planExec(inventory, HOSTS, { argv: ['systemctl', 'status', 'k3s'], sudo: false });
    expect(plain).toMatchObject({ sudo: false, concurrency: DEFAULT_CONCURRENCY, timeoutSeconds: EXEC_DEFAULT_TIMEOUT_SECONDS });
    expect(plain.hosts.map((h) => h.name)).toEqual(HOSTS);
    const [opi01] = plain.hosts;
    expect(opi01!.command.argv.slice(0, 1)).toEqual(['ssh']);
    expect(opi01!.command.argv.at(-3)).toBe('deploy@opi01.internal');
    expect(remoteWords(opi01!.command.argv)).toEqual(bounded(600, 'systemctl', 'status', 'k3s'));

    const root = planExec(inventory, ['opi02'], { argv: ['systemctl', 'restart', 'k3s'], sudo: true, timeoutSeconds: 30, concurrency: 2 });
    expect(root).toMatchObject({ sudo: true, concurrency: 2, timeoutSeconds: 30 });
    expect(remoteWords(root.hosts[0]!.command.argv)).toEqual(['sudo', '-n', '--', ...bounded(30, 'systemctl', 'restart', 'k3s')]);
    // The local bound leaves the host's timeout, its SIGKILL grace and connecting room to come first.
    expect(root.hosts[0]!.command.timeoutMs).toBe((30 + 10) * 1000 + (10 * 2 + 10) * 1000);
  });

  it('a deploy user that is root needs no sudo', () => {
    const asRoot = fleetInventory((json) => (json.hosts.opi01.deployUser = 'root'));
    expect(remoteWords(planExec(asRoot, ['opi01'], { argv: ['id', '-u'], sudo: true }).hosts[0]!.command.argv)).toEqual(bounded(600, 'id', '-u'));
  });

  it.each([
    ['spaces, quotes, $(…) and ;', `a b 'c' "d" $(hostname) \`id\` ;x`],
    ['a newline', 'line one\nline two'],
    ['backslashes, globs, $VAR, a lone quote', "\\n * ? $HOME it's ~ &|<>"],
    ['an empty word', ''],
  ])('an argument with %s reaches the remote program as one word, unchanged', (_, word) => {
    const plan = planExec(inventory, ['opi01'], { argv: ['printf', '%s\\n', word], sudo: true });
    const argv = plan.hosts[0]!.command.argv;
    const expected = ['sudo', '-n', '--', ...bounded(600, 'printf', '%s\\n', word)];
    expect(remoteWords(argv)).toEqual(expected);
    // What the host's login shell does with ssh's one string: a real sh splits it into exactly these words.
    expect(shWords(argv.at(-1)!)).toEqual(expected);
    // ssh's own arguments end with `--` and that one string: nothing of the command is an ssh argument.
    expect(argv.at(-2)).toBe('--');
  });

  it('refuses an empty command', () => {
    expect(() => planExec(inventory, HOSTS, { argv: [], sudo: false })).toThrow(/name the command to run after --/);
    expect(() => planExec(inventory, HOSTS, { argv: [''], sudo: false })).toThrow(/name the command/);
  });
});

describe('exec run', () => {
  const inventory = fleetInventory();
  const result = (over: Partial<CommandResult>): CommandResult => ({
    argv: [],
    exitCode: 0,
    signal: null,
    stdout: '',
    stderr: '',
    startedAt: 0,
    durationMs: 10,
    timedOut: false,
    aborted: false,
    ...over,
  });

  it('tells the outcomes apart: 255 is ssh failing, 124 after the whole bound is timeout\'s', () => {
    expect(hostOutcome(result({}), 5)).toBe('succeeded');
    expect(hostOutcome(result({ exitCode: 3 }), 5)).toBe('failed');
    expect(hostOutcome(result({ exitCode: 255 }), 5)).toBe('unreachable');
    expect(hostOutcome(result({ exitCode: 124, durationMs: 5_002 }), 5)).toBe('timed-out');
    expect(hostOutcome(result({ exitCode: 124, durationMs: 300 }), 5)).toBe('failed');
    expect(hostOutcome(result({ exitCode: null, timedOut: true }), 5)).toBe('timed-out');
    expect(hostOutcome(result({ exitCode: null, aborted: true }), 5)).toBe('interrupted');
  });

  it('tells each end in words', () => {
    const base = { host: 'opi01', stdout: '', stderr: '', durationMs: 2_400, started: true };
    const status = (over: Partial<Parameters<typeof hostStatus>[0]>) => hostStatus({ ...base, outcome: 'failed', exitCode: 1, ...over }, { timeoutSeconds: 2 });
    expect(status({ outcome: 'succeeded', exitCode: 0 })).toBe('exit 0');
    expect(status({})).toBe('exit 1');
    expect(status({ exitCode: null })).toBe('ended by a signal');
    expect(status({ outcome: 'timed-out', exitCode: 124 })).toBe('exit 124: timed out after 2 s');
    expect(status({ outcome: 'timed-out', exitCode: null })).toBe('timed out after 2 s');
    expect(status({ outcome: 'unreachable', exitCode: 255 })).toBe('exit 255: ssh failed (no connection or login, or it dropped), or the command exited 255');
    expect(status({ outcome: 'interrupted', exitCode: null })).toBe('interrupted');
    expect(status({ outcome: 'interrupted', exitCode: null, started: false })).toBe('not started (interrupted)');
  });

  it('runs at most `concurrency` hosts at once, and one host failing stops none of the others', async () => {
    let running = 0;
    let most = 0;
    const executor: Executor = {
      log: [],
      async run(spec: CommandSpec): Promise<CommandResult> {
        running += 1;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 20));
        running -= 1;
        return result({ argv: spec.argv, exitCode: spec.argv.includes('deploy@opi02.internal') ? 1 : 0 });
      },
    };
    const plan = planExec(inventory, HOSTS, { argv: ['true'], sudo: false, concurrency: 2 });
    const results = await runExec(plan, { executor, signal: new AbortController().signal });
    expect(most).toBe(2);
    expect(results.map((r) => [r.host, r.outcome])).toEqual([
      ['opi01', 'succeeded'],
      ['opi02', 'failed'],
      ['opi03', 'succeeded'],
    ]);
  });

  it('hands every line on with its host; Ctrl-C stops the running host and starts no other', async () => {
    const controller = new AbortController();
    const seen: string[] = [];
    const executor: Executor = {
      log: [],
      async run(spec: CommandSpec, options: RunOptions = {}): Promise<CommandResult> {
        options.onLine?.('working', 'stdout');
        options.onLine?.('warning', 'stderr');
        controller.abort();
        return result({ argv: spec.argv, exitCode: null, aborted: options.signal?.aborted ?? false });
      },
    };
    const plan = planExec(inventory, HOSTS, { argv: ['sleep', '60'], sudo: false, concurrency: 1 });
    const results = await runExec(plan, { executor, signal: controller.signal, onLine: (host, line, stream) => seen.push(`${host} ${stream} ${line}`) });
    expect(seen).toEqual(['opi01 stdout working', 'opi01 stderr warning']);
    expect(results.map((r) => [r.host, r.outcome, r.started])).toEqual([
      ['opi01', 'interrupted', true],
      ['opi02', 'interrupted', false],
      ['opi03', 'interrupted', false],
    ]);
  });
});

const validExec = new Ajv2020({ strict: false }).compile(JSON.parse(readFileSync(join(repoRoot, 'schemas/exec.schema.json'), 'utf8')));

async function inventoryFile(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'exec-'));
  await writeFile(join(dir, 'hosts.json'), fleetInventoryText());
  return join(dir, 'hosts.json');
}

async function exec(args: string[], responders: Responder[] = [], env: NodeJS.ProcessEnv = { CI: 'true' }) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), isTTY: false, env };
  const executor = new RecordingExecutor(responders);
  let clock = 1_000;
  const code = await runExecCli(['--inventory', await inventoryFile(), ...args], io, { executor, now: () => (clock += 500) });
  return { code, stdout: out.join('\n'), stderr: err.join('\n'), executor };
}

/** opi02 fails with its own status and message, the others answer. */
const oneFails: Responder[] = [
  when(['deploy@opi02.internal'], { exitCode: 3, stdout: 'opi02 partial\n', stderr: 'k3s.service: not found\n', lines: ['k3s.service: not found'] }),
  when(['deploy@opi01.internal'], { stdout: 'opi01 active\n' }),
  when(['deploy@opi03.internal'], { stdout: 'opi03 active\nsecond line\n' }),
];

describe('exec command line', () => {
  it('prints help with exit 0 and runs nothing', async () => {
    const { code, stdout, executor } = await exec(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: npx tsx scripts/exec.ts --on <selector> [options] -- <command> [<argument>…]');
    expect(stdout).toContain("--on '*' runs on every host");
    expect(executor.calls).toEqual([]);
  });

  it.each([
    [['--', 'true'], /name the hosts with --on .*--on '\*'/],
    [['--on', '@k3s'], /name the command to run after --/],
    [['--on', '@k3s', '--'], /name the command to run after --/],
    [['--on', '@k3s', '--sudo'], /name the command to run after --/],
    [['--on', '@nope', '--', 'true'], /@nope/],
    [['--on', '@k3s', '--timeout', '0', '--', 'true'], /--timeout must be a whole number ≥ 1/],
    [['--on', '@k3s', '--frobnicate', '--', 'true'], /Unknown option '--frobnicate'/],
  ])('%j is a usage error: exit 2, nothing run', async (args, message) => {
    const { code, stderr, executor } = await exec(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(executor.calls).toEqual([]);
  });

  it('words after -- are the command, flags among them too', async () => {
    const { code, executor } = await exec(['--on', 'opi01', '--', 'ls', '--json', '-h', '--', 'x']);
    expect(code).toBe(0);
    expect(remoteWords(executor.calls[0]!.argv)).toEqual(bounded(600, 'ls', '--json', '-h', '--', 'x'));
  });

  it('without -- (just drops the first one), the command starts at the first word that is not an option or its value', async () => {
    const { code, executor } = await exec(['--on', 'opi01', '--timeout', '5', 'systemctl', '--no-pager', 'status', '--', 'k3s', '--sudo']);
    expect(code).toBe(0);
    expect(remoteWords(executor.calls[0]!.argv)).toEqual(bounded(5, 'systemctl', '--no-pager', 'status', '--', 'k3s', '--sudo'));
  });

  it("--on '*' is every host, --exclude leaves some out", async () => {
    const all = await exec(['--on', '*', '--exclude', 'opi02', '--', 'true']);
    expect(all.executor.calls.map((c) => c.argv.at(-3))).toEqual(['deploy@opi01.internal', 'deploy@opi03.internal']);
  });

  it('one host failing: exit 1, its status and output told, the others\' output kept, grouped per host, and a tally', async () => {
    const { code, stdout } = await exec(['--on', '@k3s', '--', 'systemctl', 'is-active', 'k3s'], oneFails);
    expect(code).toBe(1);
    const printed = stdout.split('\n');
    // live: the streamed line, each host's end
    expect(printed).toContain('opi02 ! k3s.service: not found');
    expect(printed).toContain('opi02 ✖ exit 3, 0.0 s');
    expect(printed).toContain('opi01 ✔ exit 0, 0.0 s');
    // grouped, in inventory order
    const groups = stdout.slice(stdout.indexOf('── opi01'));
    expect(groups).toBe(
      [
        '── opi01 (exit 0, 0.0 s) ──',
        'opi01 active',
        '── opi02 (exit 3, 0.0 s) ──',
        'opi02 partial',
        '! k3s.service: not found',
        '── opi03 (exit 0, 0.0 s) ──',
        'opi03 active',
        'second line',
        'exec: 3 hosts, 2 succeeded, 1 failed (opi02) in 0.5 s',
      ].join('\n'),
    );
  });

  it('host names are padded in the live lines; an unreachable host is told as ssh failing', async () => {
    const inventory = fleetInventory();
    expect(Object.keys(inventory.hosts)).toEqual(HOSTS);
    const { code, stdout } = await exec(['--on', 'opi01,opi03', '--', 'uptime'], [
      when(['deploy@opi03.internal'], { exitCode: 255, stderr: 'ssh: connect to host opi03.internal port 22: Connection refused\n' }),
    ]);
    expect(code).toBe(1);
    expect(stdout).toContain('── opi03 (exit 255: ssh failed (no connection or login, or it dropped), or the command exited 255, 0.0 s) ──\n! ssh: connect to host opi03.internal port 22: Connection refused');
    expect(stdout).toContain('── opi01 (exit 0, 0.0 s) ──\n(no output)');
    expect(stdout).toMatch(/exec: 2 hosts, 1 succeeded, 1 unreachable \(opi03\) in/);
  });

  it('--sudo refused by sudo -n gets the hint', async () => {
    const { code, stdout } = await exec(['--on', 'opi01', '--sudo', '--', 'true'], [when(['sudo'], { exitCode: 1, stderr: 'sudo: a password is required\n' })]);
    expect(code).toBe(1);
    expect(stdout).toContain('hint: Every step that needs root');
  });

  it('--json: one document, valid against schemas/exec.schema.json, with every host\'s status and output', async () => {
    const { code, stdout, stderr } = await exec(['--on', '@k3s', '--json', '--', 'systemctl', 'is-active', 'k3s'], oneFails);
    expect(code).toBe(1);
    expect(stderr).toBe('');
    const json = JSON.parse(stdout);
    expect(validExec(json), JSON.stringify(validExec.errors)).toBe(true);
    expect(json).toMatchObject({ outcome: 'failed', exitCode: 1, argv: ['systemctl', 'is-active', 'k3s'], sudo: false });
    expect(json.hosts.map((h: any) => [h.host, h.outcome, h.exitCode, h.stdout])).toEqual([
      ['opi01', 'succeeded', 0, 'opi01 active\n'],
      ['opi02', 'failed', 3, 'opi02 partial\n'],
      ['opi03', 'succeeded', 0, 'opi03 active\nsecond line\n'],
    ]);
    expect(json.hosts[1].stderr).toBe('k3s.service: not found\n');
    // The schema admits nothing else.
    expect(validExec({ ...json, extra: 1 })).toBe(false);
  });

  it('--json errors are the error document', async () => {
    const { code, stdout } = await exec(['--json', '--', 'true']);
    expect(code).toBe(2);
    expect(JSON.parse(stdout)).toMatchObject({ outcome: 'error', exitCode: 2, error: { type: 'UsageError' } });
  });

  it('--dry-run prints the exact ssh command line per host and runs nothing; with --json, the plan', async () => {
    const text = await exec(['--on', 'opi01,opi02', '--sudo', '--timeout', '30', '--dry-run', '--', 'sh', '-c', 'echo "$1"', 'sh', 'a b']);
    expect(text.code).toBe(0);
    expect(text.executor.calls).toEqual([]);
    expect(text.stdout).toContain(`exec sh -c 'echo "$1"' sh 'a b' on opi01, opi02\n  as root (sudo -n), at most 10 at a time, bounded by 30 s on each host`);
    expect(text.stdout).toContain(
      `  opi02:\n    $ ssh -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=10 -o ServerAliveCountMax=3 deploy@opi02.internal -- 'sudo -n -- timeout --kill-after=10 30 sh -c '\\''echo "$1"'\\'' sh '\\''a b'\\'''`,
    );
    const json = await exec(['--on', 'opi01', '--dry-run', '--json', '--', 'uptime']);
    const document = JSON.parse(json.stdout);
    expect(validExec(document), JSON.stringify(validExec.errors)).toBe(true);
    expect(document).toMatchObject({ dryRun: true, plan: { argv: ['uptime'], hosts: [{ name: 'opi01' }] } });
  });

  it('colours each host unless NO_COLOR', async () => {
    const coloured = await exec(['--on', '@k3s', '--', 'true'], oneFails, { FORCE_COLOR: '1' });
    expect(coloured.stdout).toMatch(/\u001b\[36mopi01\u001b\[39m/);
    expect(coloured.stdout).toMatch(/\u001b\[35mopi02\u001b\[39m/);
    const plain = await exec(['--on', '@k3s', '--', 'true'], oneFails, { FORCE_COLOR: '1', NO_COLOR: '1' });
    expect(plain.stdout).not.toMatch(/\u001b\[/);
  });
});

describe('exec\'s options after the command', () => {
  it('are refused without --, not passed to the command (exec --on @k3s systemctl restart k3s --dry-run must not restart it)', () => {
    expect(() => parseExecArgs(['--on', 'opi01', 'uptime', '--dry-run'])).toThrow(/^--dry-run after the command would reach it, not exec/);
    expect(() => parseExecArgs(['id', '--on', 'opi01'])).toThrow(/^--on after the command would reach it/);
    expect(() => parseExecArgs(['--on', 'opi01', 'x', '--timeout=3'])).toThrow(/^--timeout after the command/);
    expect(parseExecArgs(['--on', 'opi01', '--', 'uptime', '--dry-run']).argv).toEqual(['uptime', '--dry-run']);
    expect(parseExecArgs(['--on', 'opi01', 'grep', '--count', 'x']).argv).toEqual(['grep', '--count', 'x']);
  });
});
