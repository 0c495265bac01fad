/** What the rest of the code knows about running processes. */

export interface CommandSpec {
  /** argv[0] is the program; every element reaches it as one argument. */
  readonly argv: readonly string[];
  /** Added to the orchestrator's environment. */
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

export type OutputStream = 'stdout' | 'stderr';

export interface RunOptions {
  /** Called for every complete output line while the command runs. */
  readonly onLine?: (line: string, stream: OutputStream) => void;
  readonly signal?: AbortSignal;
}

export interface CommandResult {
  readonly argv: readonly string[];
  /** null when the process was killed by a signal */
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly startedAt: number;
  readonly durationMs: number;
  readonly timedOut: boolean;
  readonly aborted: boolean;
}

/** One entry per command run, for the report. */
export interface CommandLogEntry {
  readonly argv: readonly string[];
  readonly exitCode: number | null;
  readonly startedAt: number;
  readonly durationMs: number;
}

export interface Executor {
  run(spec: CommandSpec, options?: RunOptions): Promise<CommandResult>;
  readonly log: readonly CommandLogEntry[];
}

export function succeeded(result: CommandResult): boolean {
  return result.exitCode === 0 && !result.timedOut && !result.aborted;
}

/** The last `count` non-empty lines of a command's output, for error messages. */
export function outputTail(result: Pick<CommandResult, 'stdout' | 'stderr'>, count = 15): string[] {
  // trimEnd: ssh ends its own messages with \r\n.
  const lines = `${result.stderr}\n${result.stdout}`.split('\n').map((line) => line.trimEnd()).filter((line) => line !== '');
  return lines.slice(-count);
}
