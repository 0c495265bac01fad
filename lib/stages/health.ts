/**
 * Health checks after a host's activation, as planned (lib/plan/types.ts
 * HealthPlan): each bounded by a timeout and retried (as morph does), then
 * held through the settle window.
 */
import { sleep } from '../backoff.ts';
import type { Executor } from '../exec/types.ts';
import { outputTail, succeeded } from '../exec/types.ts';
import { fillCommand, type PlaceholderValues } from '../plan/placeholders.ts';
import type { HealthCheckPlan, HealthPlan } from '../plan/types.ts';

export interface HealthCheck {
  readonly name: string;
  /** resolves when healthy; rejects with the reason otherwise */
  readonly run: (signal: AbortSignal) => Promise<void>;
}

/** The plan's checks for one host, ready to run: commands filled with `values` and run by `executor`, HTTP checks fetched. */
export function healthChecksFor(plan: HealthPlan, executor: Executor, values: PlaceholderValues): HealthCheck[] {
  return plan.checks.map((check) => ({
    name: check.name,
    run: check.kind === 'http' ? (signal) => httpCheck(check, signal) : (signal) => commandCheck(check, executor, values, signal),
  }));
}

async function commandCheck(check: Extract<HealthCheckPlan, { kind: 'command' }>, executor: Executor, values: PlaceholderValues, signal: AbortSignal): Promise<void> {
  const command = fillCommand(check.command, values);
  const result = await executor.run(command, { signal });
  if (check.stdoutOneOf) {
    const said = result.stdout.trim();
    if (!check.stdoutOneOf.includes(said)) throw new Error(`${command.argv.at(-1)} says '${said || result.stderr.trim()}'`);
    return;
  }
  if (!succeeded(result)) {
    const why = result.timedOut ? `no answer within ${Math.round(command.timeoutMs / 1000)} s` : `exit ${result.exitCode}`;
    throw new Error(`${why}: ${outputTail(result, 3).join(' / ')}`);
  }
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
 * Runs the checks side by side, each retried `retries` times, `intervalMs`
 * apart, until it passes; resolves once every check has passed or given
 * up. A failure is the first check in the plan's order that gave up (so
 * "ssh answers" rather than what could not be asked without it).
 */
export async function runHealthChecks(
  checks: readonly HealthCheck[],
  options: { retries: number; intervalMs: number; signal: AbortSignal; onProgress?: (text: string) => void },
): Promise<HealthOutcome> {
  if (checks.length) options.onProgress?.(`health: ${checks.map((check) => check.name).join(', ')}`);
  const outcomes = await Promise.all(checks.map((check) => untilPassed(check, options)));
  const failed = outcomes.find((outcome) => outcome !== undefined);
  return failed ? { failed } : {};
}

/** One check, retried; what it said when it gave up, or undefined once it passed. */
async function untilPassed(
  check: HealthCheck,
  options: { retries: number; intervalMs: number; signal: AbortSignal; onProgress?: (text: string) => void },
): Promise<HealthOutcome['failed']> {
  for (let attempts = 1; ; attempts++) {
    if (attempts > 1) options.onProgress?.(`health: ${check.name} (attempt ${attempts})`);
    try {
      await check.run(options.signal);
      return undefined;
    } catch (error) {
      if (options.signal.aborted || attempts > options.retries) return { check: check.name, reason: (error as Error).message, attempts };
      await sleep(options.intervalMs, options.signal);
    }
  }
}

export interface HoldOutcome {
  readonly failed?: { readonly check: string; readonly reason: string; readonly afterSeconds: number } | undefined;
}

/**
 * The settle window: after the checks first pass, every check must keep
 * passing, asked again every `intervalMs` (at least 0.5 s) for `durationMs`,
 * without retries: a unit that starts and dies a few seconds later, leaving
 * the system `degraded`, is caught here rather than confirmed.
 */
export async function holdHealthy(
  checks: readonly HealthCheck[],
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
    // One round: every check once, no retries.
    const round = await runHealthChecks(checks, { retries: 0, intervalMs: 0, signal: options.signal });
    if (options.signal.aborted) return {};
    if (round.failed) return { failed: { check: round.failed.check, reason: round.failed.reason, afterSeconds: elapsed } };
  }
}
