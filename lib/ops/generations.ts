/**
 * Runs a generations plan (lib/plan/generations.ts): every selected host's
 * listing over ssh, at most `concurrency` at a time; a host that does not
 * answer (or answers something unreadable) is a failed result, never a
 * reason to stop the others. Ctrl-C (the signal) stops the running commands
 * and starts no new host. Never re-plans.
 */
import pLimit from 'p-limit';
import { z } from 'zod';
import { InterruptedError } from '../errors.ts';
import { commandLine, exitStatus } from '../exec/describe.ts';
import { type CommandResult, type Executor, outputTail, succeeded } from '../exec/types.ts';
import type { GenerationsPlan } from '../plan/generations.ts';
import { hostGenerationsSchema, parseGenerations } from '../remote/generations.ts';

/** Why a host has no listing: the command as one sh line, how it ended, and the end of its output. */
export const generationsFailureSchema = z.object({
  /** the command, copy-pasteable (lib/exec/describe.ts commandLine) */
  command: z.string(),
  /** ssh's exit status (255: it could not connect or log in); null when it timed out or a signal ended it */
  exitCode: z.number().int().nullable(),
  /** how it ended, in words: `ssh exited with 255`, `ssh timed out after 30 s`, or why its output could not be read */
  status: z.string(),
  /** the last lines of its output (stderr, then stdout) */
  outputTail: z.array(z.string()),
});

export const hostGenerationsResultSchema = z.discriminatedUnion('ok', [
  z.object({ host: z.string(), ok: z.literal(true) }).extend(hostGenerationsSchema.shape),
  z.object({ host: z.string(), ok: z.literal(false), error: generationsFailureSchema }),
]);
export type HostGenerationsResult = z.infer<typeof hostGenerationsResultSchema>;

export interface GenerationsRunOptions {
  readonly executor: Executor;
  readonly signal: AbortSignal;
  /** called as each host ends, in the order they end, with its index in the plan */
  readonly onResult?: ((result: HostGenerationsResult, index: number) => void) | undefined;
}

/** One host's result from its command's. */
export function hostResult(host: string, command: GenerationsPlan['hosts'][number]['command'], result: CommandResult): HostGenerationsResult {
  const failed = (status: string): HostGenerationsResult => ({
    host,
    ok: false,
    error: { command: commandLine(command), exitCode: result.timedOut ? null : result.exitCode, status, outputTail: outputTail(result) },
  });
  const program = command.argv[0];
  if (!succeeded(result)) return failed(`${program} ${exitStatus(result)}`);
  try {
    return { host, ok: true, ...parseGenerations(result.stdout) };
  } catch (error) {
    return failed(`${program} exited with 0 but ${(error as Error).message}`);
  }
}

/**
 * Runs `plan` and resolves with one result per host, in the plan's
 * (inventory) order; a host's failure is its result, never a rejection.
 * Each command runs under its planned bound (ms). Rejects with
 * InterruptedError once `signal` has aborted (running commands are killed by
 * the executor; hosts not yet started are not asked).
 */
export async function runGenerations(plan: GenerationsPlan, options: GenerationsRunOptions): Promise<HostGenerationsResult[]> {
  const limit = pLimit(plan.concurrency);
  const results = await Promise.all(
    plan.hosts.map((host, index) =>
      limit(async (): Promise<HostGenerationsResult | undefined> => {
        if (options.signal.aborted) return undefined;
        const ran = await options.executor.run(host.command, { signal: options.signal });
        if (ran.aborted || options.signal.aborted) return undefined;
        const result = hostResult(host.name, host.command, ran);
        options.onResult?.(result, index);
        return result;
      }),
    ),
  );
  if (options.signal.aborted) throw new InterruptedError('generations: interrupted');
  return results.filter((r) => r !== undefined);
}

/** Whether every host answered with its listing. */
export function allAnswered(results: readonly HostGenerationsResult[]): boolean {
  return results.every((r) => r.ok);
}
