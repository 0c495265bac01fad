/**
 * Health checks after a host's activation, as planned (lib/plan/types.ts
 * HealthPlan): in rounds, every check once per round, the command checks one
 * after the other in one command on the target (lib/remote/health-round.ts)
 * beside the HTTP checks; a round retried (as morph retries its checks) until
 * every check passes in one, then held through the settle window.
 */
import { sleep } from '../backoff.ts';
import type { CommandResult, Executor } from '../exec/types.ts';
import { outputTail, succeeded } from '../exec/types.ts';
import { fillCommand, type PlaceholderValues } from '../plan/placeholders.ts';
import type { HealthCheckPlan, HealthPlan } from '../plan/types.ts';
import { type CheckAnswer, outputOf, parseHealthRound } from '../remote/health-round.ts';

/** The first check of a round, in the plan's order, that failed, and why. */
export interface CheckFailure {
  readonly check: string;
  readonly reason: string;
}

/** One round: every check once; resolves to the first failure in the plan's order, or undefined when all passed. */
export type HealthRound = (signal: AbortSignal) => Promise<CheckFailure | undefined>;

/**
 * The plan's round for one host, ready to run: the round command filled with
 * `values` and run by `executor`, the HTTP checks fetched from here. A check
 * the round did not report (ssh failed, the round ran out of time) fails
 * with the round's own status, so a host that cannot be reached fails its
 * first check, "ssh answers".
 */
export function healthRoundFor(plan: HealthPlan, executor: Executor, values: PlaceholderValues): HealthRound {
  const round = plan.round ? fillCommand(plan.round, values) : undefined;
  const onTarget = plan.checks.filter((check) => check.kind === 'command');
  return async (signal) => {
    const [answered, ...fetched] = await Promise.all([
      round ? executor.run(round, { signal }) : undefined,
      ...plan.checks.map((check) => (check.kind === 'http' ? httpCheck(check, signal).then(() => undefined, (error: Error) => error.message) : undefined)),
    ]);
    const answers = answered ? parseHealthRound(answered) : new Map<number, CheckAnswer>();
    for (const [index, check] of plan.checks.entries()) {
      let reason: string | undefined;
      if (check.kind === 'http') reason = fetched[index];
      else {
        const at = onTarget.indexOf(check);
        const answer = answers.get(at);
        reason = answer ? judge(check, answer) : unreported(answered!, round!.timeoutMs, at);
      }
      if (reason !== undefined) return { check: check.name, reason };
    }
    // Every check answered, yet the round did not end: one left a process holding its output (ssh waits for it).
    if (answered && !succeeded(answered)) {
      const last = onTarget.at(-1)!;
      return { check: last.name, reason: `${unreported(answered, round!.timeoutMs, onTarget.length - 1)} (every check answered, but the round did not end: one left a process holding its output?)` };
    }
    return undefined;
  };
}

/** Why a command check failed (undefined: it passed), from what the round reported for it. */
function judge(check: Extract<HealthCheckPlan, { kind: 'command' }>, answer: CheckAnswer): string | undefined {
  if (check.stdoutOneOf) {
    const said = answer.stdout.trim();
    return check.stdoutOneOf.includes(said) ? undefined : `${check.argv.at(-1)} says '${said || answer.stderr.trim()}'`;
  }
  return answer.exitCode === 0 ? undefined : `exit ${answer.exitCode}: ${outputTail(answer, 3).join(' / ')}`;
}

/**
 * Why a check the round did not report failed: the round ended while it ran
 * or before it began (ssh failed, the round's bound, a stop). Only the first
 * such check can be the failure told: those before it were reported.
 */
function unreported(round: CommandResult, roundTimeoutMs: number, index: number): string {
  if (round.timedOut) return `no answer within ${Math.round(roundTimeoutMs / 1000)} s`;
  return `${round.aborted ? 'stopped' : `exit ${round.exitCode}`}: ${outputTail(outputOf(round, index), 3).join(' / ')}`;
}

async function httpCheck(check: Extract<HealthCheckPlan, { kind: 'http' }>, signal: AbortSignal): Promise<void> {
  const response = await fetch(check.url, { signal: AbortSignal.any([signal, AbortSignal.timeout(check.timeoutMs)]), redirect: 'manual' });
  await response.body?.cancel();
  if (response.status !== check.status) throw new Error(`answered ${response.status}`);
}

export interface HealthOutcome {
  readonly failed?: { readonly check: string; readonly reason: string; readonly attempts: number } | undefined;
}

/**
 * Runs `round` until every check passes in one, at most 1 + `retries`
 * times, `intervalMs` apart. A failure is the last round's first failing
 * check in the plan's order (so "ssh answers" rather than what could not be
 * asked without it), with the number of rounds run.
 */
export async function runHealthChecks(
  round: HealthRound,
  names: readonly string[],
  options: { retries: number; intervalMs: number; signal: AbortSignal; onProgress?: (text: string) => void },
): Promise<HealthOutcome> {
  if (!names.length) return {};
  options.onProgress?.(`health: ${names.join(', ')}`);
  for (let attempts = 1; ; attempts++) {
    const failed = await round(options.signal);
    if (!failed) return {};
    if (options.signal.aborted || attempts > options.retries) return { failed: { ...failed, attempts } };
    options.onProgress?.(`health: ${failed.check} (attempt ${attempts + 1})`);
    await sleep(options.intervalMs, options.signal);
  }
}

export interface HoldOutcome {
  readonly failed?: { readonly check: string; readonly reason: string; readonly afterSeconds: number } | undefined;
}

/**
 * The settle window: after the checks first pass, every check must keep
 * passing, a round every `intervalMs` (at least 0.5 s) for `durationMs`,
 * without retries: a unit that starts and dies a few seconds later, leaving
 * the system `degraded`, is caught here rather than confirmed.
 */
export async function holdHealthy(
  round: HealthRound,
  options: { durationMs: number; intervalMs: number; signal: AbortSignal; onProgress?: (text: string) => void },
): Promise<HoldOutcome> {
  const started = Date.now();
  const interval = Math.max(500, options.intervalMs);
  // Said from the start: the row shows the window while it waits, not only during its rounds (~0.1 s each).
  options.onProgress?.(`health: holding (0/${Math.round(options.durationMs / 1000)} s)`);
  for (;;) {
    const left = started + options.durationMs - Date.now();
    if (left <= 0 || options.signal.aborted) return {};
    await sleep(Math.min(interval, left), options.signal);
    if (options.signal.aborted) return {};
    const elapsed = Math.round((Date.now() - started) / 1000);
    options.onProgress?.(`health: holding (${elapsed}/${Math.round(options.durationMs / 1000)} s)`);
    const failed = await round(options.signal);
    if (options.signal.aborted) return {};
    if (failed) return { failed: { ...failed, afterSeconds: elapsed } };
  }
}
