/**
 * What every entry point shares (deploy, doctor, report): where output goes,
 * Ctrl-C, and how an error that ends the command becomes text or JSON and an
 * exit code (lib/errors.ts ExitCode).
 */
import { ExitCode, InterruptedError, isKnownError, StageError, UsageError } from '../errors.ts';
import { colours } from './colour.ts';

export interface Io {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Whether stdout is a terminal: the renderer and the colours (lib/cli/colour.ts) follow it. */
  readonly isTTY: boolean;
  /** The environment the command answers to (CI, NO_COLOR, FORCE_COLOR, TERM, …). */
  readonly env: NodeJS.ProcessEnv;
}

export const processIo: Io = {
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
  isTTY: Boolean(process.stdout.isTTY),
  env: process.env,
};

/** First SIGINT/SIGTERM aborts the running commands; a second one exits at once. */
export function interruptOnSignals(controller: AbortController, io: Io, stopping = 'stopping running commands, starting no new host'): () => void {
  const chalk = colours(io);
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(ExitCode.interrupted);
    io.stderr(chalk.yellow(`\n${signal}: ${stopping} (again to quit at once)`));
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

/**
 * Whether the command line asks for JSON: `--json` before any `--`. Read
 * before parsing, so that an argument error (an unknown flag, a bad value)
 * is also answered in JSON; once the options are parsed, their `json` decides.
 */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * How every entry point answers an error that ends the command: under
 * --json a single JSON object on stdout (`{ outcome: 'error', exitCode,
 * error: { type, message, hints } }`) and nothing on stderr; else `text`
 * (default {@link reportError}) on stderr. Returns the exit code.
 */
export function failure(error: unknown, json: boolean, io: Io, text: (error: unknown, io: Io) => void = reportError): number {
  if (json) io.stdout(JSON.stringify({ outcome: 'error', exitCode: exitCodeOf(error), ...errorJson(error) }, null, 2));
  else text(error, io);
  return exitCodeOf(error);
}

/** The exit code for an error: its own for the typed errors of lib/errors.ts, else 1. */
export function exitCodeOf(error: unknown): number {
  return isKnownError(error) ? error.exitCode : ExitCode.stageFailed;
}

/** The `error` field of a JSON answer (none without an error); hints only a StageError has. */
export function errorJson(error: unknown): { error?: { type: string; message: string; hints: readonly string[] } } {
  if (!error) return {};
  const e = error as Error;
  return { error: { type: e.name, message: e.message, hints: e instanceof StageError ? e.hints : [] } };
}

/** An error as text on stderr, coloured as `io` allows; a bug's stack trace only for an unknown error. */
export function reportError(error: unknown, io: Io): void {
  const chalk = colours(io);
  if (error instanceof InterruptedError) {
    io.stderr(chalk.yellow('interrupted: hosts not yet started were left untouched (see the table above)'));
    return;
  }
  if (!isKnownError(error)) {
    io.stderr(chalk.red(`internal error (a bug in avalanche-deploy): ${(error as Error)?.stack ?? String(error)}`));
    return;
  }
  io.stderr(chalk.red(`error: ${error.message}`));
  if (error instanceof StageError) for (const hint of error.hints) io.stderr(chalk.yellow(`  hint: ${hint}`));
  if (error instanceof UsageError) io.stderr(chalk.dim('  (--help for usage)'));
}
