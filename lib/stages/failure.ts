/** A failed step as the stages' typed errors. */
import { InterruptedError, StageError } from '../errors.ts';
import { describeFailure } from '../exec/describe.ts';
import { type CommandResult, type CommandSpec, succeeded } from '../exec/types.ts';

/**
 * Throws the right typed error unless the command succeeded: InterruptedError
 * when the run was aborted, else StageError with describeFailure's text
 * (`output` as there) and `hints`.
 */
export function expectSuccess(
  what: string,
  command: Pick<CommandSpec, 'argv' | 'env'>,
  result: CommandResult,
  hints: readonly string[] = [],
  output?: readonly string[],
): void {
  if (result.aborted) throw new InterruptedError(`${what}: interrupted`);
  if (!succeeded(result)) throw new StageError(describeFailure(what, command, result, output), hints);
}
