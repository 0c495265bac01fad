/**
 * Typed errors the entry points map to exit codes (see lib/cli/io.ts).
 * Anything else that escapes is a bug and is reported as such.
 */

export const ExitCode = {
  ok: 0,
  stageFailed: 1,
  usage: 2,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Wrong flags or arguments on the command line. */
export class UsageError extends Error {
  readonly exitCode = ExitCode.usage;
  override name = 'UsageError';
}

/** hosts.json is missing, unreadable or invalid; `issues` name JSON paths. */
export class InventoryError extends Error {
  readonly exitCode = ExitCode.usage;
  override name = 'InventoryError';
  constructor(
    message: string,
    readonly issues: readonly string[] = [],
  ) {
    super(issues.length ? `${message}\n${issues.map((i) => `  - ${i}`).join('\n')}` : message);
  }
}

/** A stage of the deploy failed; the message says which host and command. */
export class StageError extends Error {
  readonly exitCode = ExitCode.stageFailed;
  override name = 'StageError';
  constructor(
    message: string,
    readonly hints: readonly string[] = [],
  ) {
    super(message);
  }
}

/** The run was interrupted by SIGINT/SIGTERM. */
export class InterruptedError extends Error {
  readonly exitCode = ExitCode.interrupted;
  override name = 'InterruptedError';
  constructor(message = 'interrupted') {
    super(message);
  }
}

export type KnownError = UsageError | InventoryError | StageError | InterruptedError;

export function isKnownError(error: unknown): error is KnownError {
  return (
    error instanceof UsageError ||
    error instanceof InventoryError ||
    error instanceof StageError ||
    error instanceof InterruptedError
  );
}
