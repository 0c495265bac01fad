/**
 * Runs a stage's subtasks side by side and fails the stage with every
 * failure, not just the first: listr2 alone would let the parent pass when
 * subtasks run with exitOnError off.
 */
import type { ListrTaskWrapper } from 'listr2';
import { InterruptedError, StageError } from '../errors.ts';
import type { RunContext } from './context.ts';

export interface Subtask {
  readonly title: string;
  readonly run: (task: ListrTaskWrapper<RunContext, any, any>) => Promise<void>;
}

export async function runSubtasks(
  parent: ListrTaskWrapper<RunContext, any, any>,
  ctx: RunContext,
  subtasks: readonly Subtask[],
  concurrent: boolean | number = true,
): Promise<void> {
  const failures: Error[] = [];
  await parent
    .newListr<RunContext>(
      subtasks.map((sub) => ({
        title: sub.title,
        task: async (_ctx, task) => {
          try {
            await sub.run(task);
          } catch (error) {
            failures.push(error as Error);
            throw error;
          }
        },
      })),
      { concurrent, exitOnError: false },
    )
    .run(ctx);
  const interrupted = failures.find((f) => f instanceof InterruptedError);
  if (interrupted) throw interrupted;
  if (failures.length === 1 && failures[0] instanceof StageError) throw failures[0];
  if (failures.length) {
    const hints = [...new Set(failures.flatMap((f) => (f instanceof StageError ? f.hints : [])))];
    throw new StageError(failures.map((f) => f.message).join('\n'), hints);
  }
}
