/**
 * Runs an exec plan (lib/plan/exec.ts): the command on every host, at most
 * `concurrency` at a time, each output line handed on as it comes; one
 * host's failure never stops the others. Ctrl-C (the signal) stops the
 * running commands and starts no new host. Never re-plans.
 */
import pLimit from 'p-limit';
import { z } from 'zod';
import { type CommandResult, type Executor, type OutputStream } from '../exec/types.ts';
import { type ExecHostPlan, type ExecPlan, TIMEOUT_EXIT_STATUS } from '../plan/exec.ts';
import { SSH_FAILED } from '../remote/host.ts';

/**
 * How a host ended:
 * - `succeeded`: exit 0;
 * - `failed`: the command exited non-zero (or a signal ended it);
 * - `unreachable`: ssh exited 255 (could not connect or log in, or the connection failed);
 * - `timed-out`: past `--timeout` (the host's `timeout` exited 124, or the local bound fired);
 * - `interrupted`: stopped by Ctrl-C, or never started because of it.
 */
export const EXEC_HOST_OUTCOMES = ['succeeded', 'failed', 'unreachable', 'timed-out', 'interrupted'] as const;
export type ExecHostOutcome = (typeof EXEC_HOST_OUTCOMES)[number];

export const execHostResultSchema = z.object({
  host: z.string(),
  outcome: z.enum(EXEC_HOST_OUTCOMES),
  /** the remote command's exit status as ssh returns it (255: see outcome); null when a signal ended ssh or it never started */
  exitCode: z.number().int().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  /** from starting ssh to its end, in ms (0 when it never started) */
  durationMs: z.number(),
  /** false when Ctrl-C came before this host's turn */
  started: z.boolean(),
});
export type ExecHostResult = z.infer<typeof execHostResultSchema>;

/** One output line of one host, as it arrives. */
export type ExecLineListener = (host: string, line: string, stream: OutputStream) => void;

export interface ExecRunOptions {
  readonly executor: Executor;
  readonly signal: AbortSignal;
  readonly onLine?: ExecLineListener | undefined;
  /** called as each host ends, in the order they end */
  readonly onHostEnd?: ((result: ExecHostResult) => void) | undefined;
}

/** The outcome of one host's command (see {@link EXEC_HOST_OUTCOMES}). */
export function hostOutcome(result: CommandResult, timeoutSeconds: number): ExecHostOutcome {
  if (result.aborted) return 'interrupted';
  // 124 from a command that ran its whole bound is timeout's; earlier, it is the command's own status.
  if (result.timedOut || (result.exitCode === TIMEOUT_EXIT_STATUS && result.durationMs >= timeoutSeconds * 1000)) return 'timed-out';
  if (result.exitCode === 0) return 'succeeded';
  if (result.exitCode === SSH_FAILED) return 'unreachable';
  return 'failed';
}

/**
 * Runs `plan` and resolves with one result per host, in the plan's
 * (inventory) order; never rejects for a host's failure. Each host's ssh
 * runs under its planned bound; lines reach `onLine` as they arrive
 * (complete lines, per stream). Once `signal` aborts, running commands are
 * stopped (lib/exec/zx-executor.ts kills the local ssh; the host's own
 * `timeout` bounds what it left running there) and hosts not yet started
 * are `interrupted` with `started: false`.
 */
export async function runExec(plan: ExecPlan, options: ExecRunOptions): Promise<ExecHostResult[]> {
  const limit = pLimit(plan.concurrency);
  const runHost = async (host: ExecHostPlan): Promise<ExecHostResult> => {
    if (options.signal.aborted) return { host: host.name, outcome: 'interrupted', exitCode: null, stdout: '', stderr: '', durationMs: 0, started: false };
    const result = await options.executor.run(host.command, { signal: options.signal, onLine: (line, stream) => options.onLine?.(host.name, line, stream) });
    return {
      host: host.name,
      outcome: hostOutcome(result, plan.timeoutSeconds),
      exitCode: result.exitCode,
      stdout: result.stdout,
      stderr: result.stderr,
      durationMs: result.durationMs,
      started: true,
    };
  };
  return Promise.all(
    plan.hosts.map((host) =>
      limit(async () => {
        const result = await runHost(host);
        options.onHostEnd?.(result);
        return result;
      }),
    ),
  );
}

/** Whether every host succeeded. */
export function allSucceeded(results: readonly ExecHostResult[]): boolean {
  return results.every((r) => r.outcome === 'succeeded');
}
