/** How a failed command is told: host, command, exit status and the tail of its output (or what the caller made of it). */
import { InterruptedError, StageError } from '../errors.ts';
import { type CommandResult, outputTail, succeeded } from '../exec/types.ts';
import type { PlannedCommand } from '../plan.ts';
import { shellQuote } from '../ssh.ts';

export function commandLine(command: Pick<PlannedCommand, 'argv' | 'env'>): string {
  const env = Object.entries(command.env ?? {}).map(([k, v]) => `${k}=${shellQuote(v)}`);
  return [...env, ...command.argv.map(shellQuote)].join(' ');
}

export function exitStatus(result: CommandResult): string {
  if (result.timedOut) return `timed out after ${Math.round(result.durationMs / 1000)} s`;
  if (result.exitCode !== null) return `exited with ${result.exitCode}`;
  return `was killed by ${result.signal ?? 'a signal'}`;
}

/**
 * `<what>: <argv0> exited with N`, `  $ <command line>`, then `  | <line>`
 * for each of `output`: by default the last 15 lines of the command's raw
 * output; commands whose output is a machine format (Nix's internal-json
 * log) pass the lines they made of it instead.
 */
export function describeFailure(what: string, command: PlannedCommand, result: CommandResult, output: readonly string[] = outputTail(result)): string {
  const tail = output.map((line) => `  | ${line}`);
  return [`${what}: ${command.argv[0]} ${exitStatus(result)}`, `  $ ${commandLine(command)}`, ...tail].join('\n');
}

/**
 * Throws the right typed error unless the command succeeded: InterruptedError
 * when the run was aborted, else StageError with describeFailure's text
 * (`output` as there) and `hints`.
 */
export function expectSuccess(
  what: string,
  command: PlannedCommand,
  result: CommandResult,
  hints: readonly string[] = [],
  output?: readonly string[],
): void {
  if (result.aborted) throw new InterruptedError(`${what}: interrupted`);
  if (!succeeded(result)) throw new StageError(describeFailure(what, command, result, output), hints);
}
