/**
 * Health checks after a host's activation: inventory-wide defaults plus the
 * host's own additions, each bounded by a timeout and retried (as morph does).
 */
import { sleep } from '../backoff.ts';
import type { Executor } from '../exec/types.ts';
import { outputTail, succeeded } from '../exec/types.ts';
import type { HostName, Inventory } from '../inventory/schema.ts';
import { deployTarget, sshArgv } from '../ssh.ts';

export interface HealthCheck {
  readonly name: string;
  /** resolves when healthy; rejects with the reason otherwise */
  readonly run: (signal: AbortSignal) => Promise<void>;
}

export function healthChecksFor(inventory: Inventory, host: HostName, executor: Executor): HealthCheck[] {
  const entry = inventory.hosts[host]!;
  const defaults = inventory.health;
  const own = entry.health;
  const timeoutMs = defaults.timeoutSeconds * 1000;
  const remote = (argv: string[]) => sshArgv(inventory, deployTarget(entry), argv);
  const onTarget = async (argv: string[], signal: AbortSignal) => {
    const result = await executor.run({ argv: remote(argv), timeoutMs }, { signal });
    if (!succeeded(result)) {
      const why = result.timedOut ? `no answer within ${defaults.timeoutSeconds} s` : `exit ${result.exitCode}`;
      throw new Error(`${why}: ${outputTail(result, 3).join(' / ')}`);
    }
    return result.stdout.trim();
  };

  const checks: HealthCheck[] = [{ name: 'ssh answers', run: (signal) => onTarget(['true'], signal).then(() => undefined) }];
  const systemState = own?.systemState ?? defaults.systemState ?? 'running-or-degraded';
  if (systemState !== 'skip') {
    const accepted = systemState === 'running' ? ['running'] : ['running', 'degraded'];
    checks.push({
      name: `system state is ${accepted.join(' or ')}`,
      run: async (signal) => {
        // is-system-running exits non-zero for "degraded": judge by what it prints.
        const result = await executor.run({ argv: remote(['systemctl', 'is-system-running']), timeoutMs }, { signal });
        const state = result.stdout.trim();
        if (!accepted.includes(state)) throw new Error(`systemctl is-system-running says '${state || result.stderr.trim()}'`);
      },
    });
  }
  const units = [...defaults.units, ...(own?.units ?? [])];
  if (units.length) {
    checks.push({ name: `units active: ${units.join(', ')}`, run: (signal) => onTarget(['systemctl', 'is-active', '--', ...units], signal).then(() => undefined) });
  }
  for (const argv of [...defaults.commands, ...(own?.commands ?? [])]) {
    checks.push({ name: `command: ${argv.join(' ')}`, run: (signal) => onTarget(argv, signal).then(() => undefined) });
  }
  for (const { url, status } of [...defaults.http, ...(own?.http ?? [])]) {
    checks.push({
      name: `GET ${url} answers ${status}`,
      run: async (signal) => {
        const response = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]), redirect: 'manual' });
        await response.body?.cancel();
        if (response.status !== status) throw new Error(`answered ${response.status}`);
      },
    });
  }
  return checks;
}

export interface HealthOutcome {
  readonly failed?: { readonly check: string; readonly reason: string; readonly attempts: number } | undefined;
}

/** Runs the checks in order; each is retried `retries` times, `intervalMs` apart. */
export async function runHealthChecks(
  checks: readonly HealthCheck[],
  options: { retries: number; intervalMs: number; signal: AbortSignal; onProgress?: (text: string) => void },
): Promise<HealthOutcome> {
  for (const check of checks) {
    let attempts = 0;
    for (;;) {
      attempts += 1;
      options.onProgress?.(`health: ${check.name}${attempts > 1 ? ` (attempt ${attempts})` : ''}`);
      try {
        await check.run(options.signal);
        break;
      } catch (error) {
        if (options.signal.aborted || attempts > options.retries) {
          return { failed: { check: check.name, reason: (error as Error).message, attempts } };
        }
        await sleep(options.intervalMs, options.signal);
      }
    }
  }
  return {};
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
