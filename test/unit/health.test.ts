/**
 * Health checks (lib/stages/health.ts, lib/remote/health-round.ts): a round
 * runs every command check, one after the other, in one command on the
 * target, bounded as a whole; a round is retried until every check passes
 * in one; the failure told is the first check in the plan's order.
 *
 * The round script itself runs here, with this machine's sh, as the
 * target's login shell runs the line ssh hands it.
 */
import { describe, expect, it } from 'vitest';
import { ZxExecutor } from '../../lib/exec/zx-executor.ts';
import type { HealthPlan } from '../../lib/plan/types.ts';
import { healthRoundArgv, parseHealthRound } from '../../lib/remote/health-round.ts';
import type { RemoteHost } from '../../lib/remote/host.ts';
import { healthRoundFor, runHealthChecks } from '../../lib/stages/health.ts';
import { RecordingExecutor, when } from '../helpers/recording-executor.ts';

const target: RemoteHost = { user: 'deploy', address: { kind: 'name', host: 'opi01.internal' }, escalation: 'sudo', sshOptions: ['-o', 'BatchMode=yes'] };

/** Runs a round of `checks` as the target's login shell runs ssh's remote command: `sh -c <the quoted line>`. */
async function roundHere(checks: string[][]) {
  const argv = healthRoundArgv(target, checks);
  expect(argv[0]).toBe('ssh');
  const result = await new ZxExecutor().run({ argv: ['sh', '-c', argv.at(-1)!], timeoutMs: 30_000 });
  expect(result.exitCode).toBe(0);
  return parseHealthRound(result);
}

describe('the round script', () => {
  it('reports each check: its status, and its stdout and stderr apart, whatever they print; arguments arrive as given', async () => {
    const answers = await roundHere([
      ['true'],
      ['sh', '-c', 'echo degraded; echo "it\'s broken" >&2; exit 3'],
      ['printf', '%s|', 'two words', "a'quote", '$HOME', '', '@@avalanche-health 0 end 0'],
      ['sh', '-c', 'printf "no newline"; printf "nor here" >&2'],
      ['no-such-command-anywhere'],
    ]);
    expect([...answers.keys()]).toEqual([0, 1, 2, 3, 4]);
    expect(answers.get(0)).toEqual({ exitCode: 0, stdout: '', stderr: '' });
    expect(answers.get(1)).toEqual({ exitCode: 3, stdout: 'degraded', stderr: "it's broken" });
    expect(answers.get(2)).toEqual({ exitCode: 0, stdout: "two words|a'quote|$HOME||@@avalanche-health 0 end 0|", stderr: '' });
    expect(answers.get(3)).toEqual({ exitCode: 0, stdout: 'no newline', stderr: 'nor here' });
    expect(answers.get(4)!.exitCode).toBe(127);
    expect(answers.get(4)!.stderr).toContain('no-such-command-anywhere');
  });

  it('a login shell\'s banner without a newline does not hide the first check', async () => {
    const line = healthRoundArgv(target, [['true'], ['echo', 'ok']]).at(-1)!;
    const result = await new ZxExecutor().run({ argv: ['sh', '-c', `printf 'Welcome'; printf 'to stderr' >&2; ${line}`], timeoutMs: 30_000 });
    expect([...parseHealthRound(result).entries()]).toEqual([
      [0, { exitCode: 0, stdout: '', stderr: '' }],
      [1, { exitCode: 0, stdout: 'ok', stderr: '' }],
    ]);
  });

  it('a check cannot end the round: the ones after it still run', async () => {
    const answers = await roundHere([['exit', '7'], ['exec', 'false'], ['echo', 'still here']]);
    expect([...answers.values()].map((a) => [a.exitCode, a.stdout])).toEqual([[7, ''], [1, ''], [0, 'still here']]);
  });

  it('a check that hangs is the one told when the round runs out of time; those before it were answered', async () => {
    const here: RemoteHost = { ...target, local: true };
    const checks: HealthPlan['checks'] = [
      { kind: 'command', name: 'first', argv: ['true'] },
      { kind: 'command', name: 'hangs', argv: ['sleep', '30'] },
      { kind: 'command', name: 'never asked', argv: ['true'] },
    ];
    const plan: HealthPlan = { checks, round: { argv: healthRoundArgv(here, checks.map((c) => (c.kind === 'command' ? c.argv : []))), timeoutMs: 1000 }, retries: 0, intervalMs: 0, settleMs: 0 };
    expect(plan.round!.argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(await healthRoundFor(plan, new ZxExecutor(), {})(new AbortController().signal)).toEqual({ check: 'hangs', reason: 'no answer within 1 s' });
  });

  it('a round whose checks all answered but that does not end (a check left a process holding its output) fails', async () => {
    const here: RemoteHost = { ...target, local: true };
    const checks: HealthPlan['checks'] = [
      { kind: 'command', name: 'first', argv: ['true'] },
      { kind: 'command', name: 'leaves a process behind', argv: ['sh', '-c', 'sleep 30 &'] },
    ];
    const plan: HealthPlan = { checks, round: { argv: healthRoundArgv(here, checks.map((c) => (c.kind === 'command' ? c.argv : []))), timeoutMs: 1000 }, retries: 0, intervalMs: 0, settleMs: 0 };
    const failed = await healthRoundFor(plan, new ZxExecutor(), {})(new AbortController().signal);
    expect(failed).toMatchObject({ check: 'leaves a process behind' });
    expect(failed!.reason).toMatch(/^no answer within 1 s \(every check answered, but the round did not end/);
  });
});

const plan = (checks: HealthPlan['checks']): HealthPlan => {
  const onTarget = checks.flatMap((check) => (check.kind === 'command' ? [check.argv] : []));
  return { checks, round: { argv: healthRoundArgv(target, onTarget), timeoutMs: 5000 }, retries: 1, intervalMs: 0, settleMs: 0 };
};
const checks: HealthPlan['checks'] = [
  { kind: 'command', name: 'ssh answers', argv: ['true'] },
  { kind: 'command', name: 'system state is running', argv: ['systemctl', 'is-system-running'], stdoutOneOf: ['running'] },
  { kind: 'command', name: 'units active: k3s.service', argv: ['systemctl', 'is-active', '--', 'k3s.service'] },
];
const options = { retries: 1, intervalMs: 0, signal: new AbortController().signal };
const names = checks.map((check) => check.name);

describe('health rounds', () => {
  it('asks every command check in one command per round, and passes when all pass', async () => {
    const executor = new RecordingExecutor([when(['is-system-running'], { exitCode: 0, stdout: 'running\n' })]);
    expect(await runHealthChecks(healthRoundFor(plan(checks), executor, {}), names, options)).toEqual({});
    expect(executor.calls).toHaveLength(1);
  });

  it('runs every check again in the next round, and tells the first check in the plan\'s order that failed the last one', async () => {
    let rounds = 0;
    const executor = new RecordingExecutor([
      when(['is-system-running'], () => (rounds++ === 0 ? { exitCode: 1, stdout: 'starting\n' } : { exitCode: 1, stdout: 'degraded\n' })),
      when(['is-active'], { exitCode: 3, stdout: 'failed\n' }),
    ]);
    const outcome = await runHealthChecks(healthRoundFor(plan(checks), executor, {}), names, options);
    expect(outcome).toEqual({ failed: { check: 'system state is running', reason: "is-system-running says 'degraded'", attempts: 2 } });
    expect(executor.calls).toHaveLength(2);
  });

  it('a failing check is told with its status and the tail of its output', async () => {
    const failing = healthRoundFor(plan(checks.slice(2)), new RecordingExecutor([when(['is-active'], { exitCode: 3, stdout: 'inactive\n', stderr: 'hm\n' })]), {});
    expect(await failing(options.signal)).toEqual({ check: 'units active: k3s.service', reason: 'exit 3: hm / inactive' });
  });

  it('a round cut short while a check runs blames that check with ssh\'s words, not the round\'s markers', async () => {
    const executor = new RecordingExecutor([
      when(['is-system-running'], { stdout: 'running\n' }),
      when(['is-active'], { until: Promise.resolve(), exitCode: 255, stderr: 'Connection to opi01.internal closed by remote host.\n' }),
    ]);
    expect(await healthRoundFor(plan(checks), executor, {})(options.signal)).toEqual({ check: 'units active: k3s.service', reason: 'exit 255: Connection to opi01.internal closed by remote host.' });
  });

  it('a round cut short (ssh failed) fails its first check, "ssh answers", with ssh\'s status and words', async () => {
    const executor = new RecordingExecutor([when(['deploy@opi01.internal'], { exitCode: 255, stderr: 'ssh: connect to host opi01.internal port 22: Connection refused\n' })]);
    const outcome = await runHealthChecks(healthRoundFor(plan(checks), executor, {}), names, options);
    expect(outcome).toEqual({ failed: { check: 'ssh answers', reason: 'exit 255: ssh: connect to host opi01.internal port 22: Connection refused', attempts: 2 } });
    expect(executor.calls).toHaveLength(2);
  });
});
