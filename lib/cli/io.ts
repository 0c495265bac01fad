/**
 * What every entry point shares (deploy, doctor, report): where output goes,
 * Ctrl-C, and how an error that ends the command becomes text or JSON and an
 * exit code (lib/errors.ts ExitCode).
 */
import { z } from 'zod';
import { ExitCode, InterruptedError, isKnownError, StageError, UsageError } from '../errors.ts';
import { setMaxListeners } from 'node:events';
import { createInterface } from 'node:readline/promises';
import { colours } from './colour.ts';

export interface Io {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Whether stdout is a terminal: the renderer and the colours (lib/cli/colour.ts) follow it. */
  readonly isTTY: boolean;
  /** The environment the command answers to (CI, NO_COLOR, FORCE_COLOR, TERM, …). */
  readonly env: NodeJS.ProcessEnv;
  /**
   * Asks a person a yes/no question and resolves with the answer; absent
   * where no one can answer (stdin or stderr not a terminal).
   */
  readonly ask?: ((question: string) => Promise<boolean>) | undefined;
}

export const processIo: Io = {
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
  isTTY: Boolean(process.stdout.isTTY),
  env: process.env,
  ask: process.stdin.isTTY && process.stderr.isTTY ? askOnTerminal : undefined,
};

/**
 * `question [y/N] ` on stderr, one line from stdin: yes only for y or yes.
 * Ctrl-C or Ctrl-D at the question (the terminal is in raw mode: readline
 * gets them as keys and aborts) is no.
 */
async function askOnTerminal(question: string): Promise<boolean> {
  const terminal = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await terminal.question(`${question} [y/N] `)).trim());
  } catch (error) {
    if ((error as Error).name === 'AbortError') return false;
    throw error;
  } finally {
    terminal.close();
  }
}

/**
 * An interrupt this soon after the first (ms) is the same keypress, relayed:
 * the terminal signals the whole foreground process group and wrappers
 * (npx, tsx, just) relay it to their child again, within milliseconds.
 */
export const RELAYED_SIGNAL_MS = 1000;

export interface InterruptOptions {
  /** what the first interrupt does, for the message */
  readonly stopping?: string;
  /** for tests: the clock (ms) */
  readonly now?: () => number;
}

/**
 * The first SIGINT, SIGTERM or SIGHUP aborts `controller` (running commands
 * stop, no new host starts, the report is written); a later SIGINT or
 * SIGTERM, at least RELAYED_SIGNAL_MS after the first, exits at once (130).
 * SIGHUP (the terminal closed) never exits at once. For the whole run,
 * output that can no longer reach the terminal is dropped rather than
 * crashing the cleanup (see {@link ignoreClosedOutput}), until the handlers are removed. Returns the function
 * that removes the handlers.
 */
/**
 * Runs `work` with {@link interruptOnSignals} for its whole length: the
 * signal it gets is aborted by the first interrupt; the handlers are removed
 * when it ends, however it ends.
 */
export async function interruptible<T>(io: Io, options: InterruptOptions, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  // Every command in flight listens to it (two systems' builds, every host's step): more than Node's
  // leak warning allows (10) on a fleet, and warned about on stderr. The run bounds them itself.
  setMaxListeners(0, controller.signal);
  const release = interruptOnSignals(controller, io, options);
  try {
    return await work(controller.signal);
  } finally {
    release();
  }
}

export function interruptOnSignals(controller: AbortController, io: Io, options: InterruptOptions = {}): () => void {
  const chalk = colours(io);
  const now = options.now ?? Date.now;
  const stopping = options.stopping ?? 'stopping running commands, starting no new host';
  let firstAt: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstAt !== undefined) {
      if (signal !== 'SIGHUP' && now() - firstAt >= RELAYED_SIGNAL_MS) process.exit(ExitCode.interrupted);
      return;
    }
    firstAt = now();
    io.stderr(chalk.yellow(`\n${signal}: ${stopping} (Ctrl-C again to quit at once)`));
    controller.abort();
  };
  const keepOutputErrors = ignoreClosedOutput();
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
    keepOutputErrors();
  };
}

/**
 * Once the terminal is gone, writes to it fail (EIO after a hang-up, EPIPE):
 * drop them, so the run still stops cleanly and writes its report. A
 * hang-up comes not only from closing the terminal: when a wrapper that is
 * the terminal's session leader exits at the first Ctrl-C (npm's `just`
 * wrapper does), the kernel hangs the terminal up while the deploy is still
 * stopping — and an unheard write error would end it on the spot.
 */
function ignoreClosedOutput(): () => void {
  const onStreamError = (error: Error) => {
    if (!isTerminalGone(error)) throw error;
  };
  for (const stream of [process.stdout, process.stderr]) stream.on('error', onStreamError);
  // A TTY write can also throw where no stream 'error' listener is asked (listr2's renderer): only that kind of error is let go.
  process.on('uncaughtException', dropTerminalWriteError);
  return () => {
    for (const stream of [process.stdout, process.stderr]) stream.off('error', onStreamError);
    process.off('uncaughtException', dropTerminalWriteError);
  };
}

/** A write that failed because the terminal (or the pipe) is gone. */
function isTerminalGone(error: Error): boolean {
  const { code, syscall } = error as NodeJS.ErrnoException;
  return syscall === 'write' && (code === 'EIO' || code === 'EPIPE');
}

/** Lets a failed write to the gone terminal pass; anything else ends the process as an uncaught exception would (stack on stderr, exit 1). */
function dropTerminalWriteError(error: Error): void {
  if (isTerminalGone(error)) return;
  process.stderr.write(`${error.stack ?? String(error)}\n`);
  process.exit(ExitCode.stageFailed);
}

/**
 * Whether the command line asks for JSON: `--json` before any `--`. Read
 * before parsing, so that an argument error (an unknown flag, a bad value)
 * is also answered in JSON; once the options are parsed, their `json` decides.
 */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((arg) => arg === '--json' || arg.startsWith('--json='));
}

/**
 * How every entry point answers an error that ends the command: under
 * --json a single JSON object on stdout (`{ outcome: 'error', exitCode,
 * error: { type, message, hints } }`) and nothing on stderr; else `text`
 * (default {@link reportError}) on stderr. Returns the exit code.
 */
export function failure(error: unknown, json: boolean, io: Io, text: (error: unknown, io: Io) => void = reportError): number {
  if (json) io.stdout(JSON.stringify(errorOutputSchema.parse({ outcome: 'error', exitCode: exitCodeOf(error), error: errorFields(error) }), null, 2));
  else text(error, io);
  return exitCodeOf(error);
}

/** The `error` of a JSON answer: the error's class (`UsageError`, `InventoryError`, `StageError`, …), its message, and the hints a StageError carries. */
export const errorSchema = z.object({ type: z.string(), message: z.string(), hints: z.array(z.string()).readonly() });

/** What every command prints under --json when an error ends it (schemas/error.schema.json, made by lib/cli/schemas.ts). */
export const errorOutputSchema = z
  .object({ outcome: z.literal('error'), exitCode: z.number().int().min(0).max(255), error: errorSchema })
  .meta({ title: 'avalanche-deploy --json: an error', description: 'What deploy.ts, deploy-all.ts and doctor.ts print on stdout under --json when an error ends the command; exitCode is the exit status.' });

/** The exit code for an error: its own for the typed errors of lib/errors.ts, else 1. */
export function exitCodeOf(error: unknown): number {
  return isKnownError(error) ? error.exitCode : ExitCode.stageFailed;
}

/** The `error` field of a JSON answer (none without an error); see {@link errorSchema}. */
export function errorJson(error: unknown): { error?: z.infer<typeof errorSchema> } {
  return error ? { error: errorFields(error) } : {};
}

/** `error` as {@link errorSchema} says, also when something other than an Error was thrown. */
function errorFields(error: unknown): z.infer<typeof errorSchema> {
  if (!(error instanceof Error)) return { type: typeof error, message: String(error), hints: [] };
  return { type: error.name, message: error.message, hints: error instanceof StageError ? error.hints : [] };
}

/**
 * An error as text on stderr, coloured as `io` allows; a bug's stack trace
 * only for an unknown error. `shown`: the failure was already shown where it
 * happened (lib/cli/deploy.ts printResult): this names it instead of
 * printing its message again; the hints follow either way.
 */
export function reportError(error: unknown, io: Io, shown?: string): void {
  const chalk = colours(io);
  if (error instanceof InterruptedError) {
    io.stderr(chalk.yellow('interrupted: hosts not yet started were left untouched (see the table above)'));
    return;
  }
  if (!isKnownError(error)) {
    io.stderr(chalk.red(`internal error (a bug in avalanche-deploy): ${(error as Error)?.stack ?? String(error)}`));
    return;
  }
  io.stderr(chalk.red(`error: ${shown ?? error.message}`));
  if (error instanceof StageError) for (const hint of error.hints) io.stderr(chalk.yellow(`  hint: ${hint}`));
  if (error instanceof UsageError) io.stderr(chalk.dim('  (--help for usage)'));
}
