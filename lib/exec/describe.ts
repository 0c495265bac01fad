/** How a command and its failure are told: host, command line, exit status and the tail of its output. */
import { shellQuote } from '../util/shell.ts';
import { type CommandResult, type CommandSpec, outputTail } from './types.ts';

/** The command as one copy-pasteable sh line: `VAR=value argv…`, every word quoted. */
export function commandLine(command: Pick<CommandSpec, 'argv' | 'env'>): string {
  const env = Object.entries(command.env ?? {}).map(([k, v]) => `${k}=${shellQuote(v)}`);
  return [...env, ...command.argv.map(shellQuote)].join(' ');
}

/** `exited with N`, `timed out after N s`, `was killed by SIGTERM`. */
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
export function describeFailure(what: string, command: Pick<CommandSpec, 'argv' | 'env'>, result: CommandResult, output: readonly string[] = outputTail(result)): string {
  const tail = output.map((line) => `  | ${line}`);
  return [`${what}: ${command.argv[0]} ${exitStatus(result)}`, `  $ ${commandLine(command)}`, ...tail].join('\n');
}
