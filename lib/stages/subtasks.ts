/**
 * A stage's subtasks as listr2 renders them: a list the stage's task
 * returns (listr2 draws a returned list inline, a row per subtask under its
 * stage, with the run's one renderer; a list a task runs itself gets a
 * renderer of its own, which on a terminal fights the main one for the
 * screen and leaves its frames in the scrollback).
 *
 * The subtasks run side by side and none stops the others; the stage then
 * fails with every failure, not just the first, typed (InterruptedError when
 * one was interrupted, else StageError with every hint). Each failure is
 * shown once, on its own row; the stage's row says only how many failed
 * (see ShownFailure).
 */
import type { Listr, ListrTaskWrapper } from 'listr2';
import { InterruptedError, StageError } from '../errors.ts';
import type { RunContext } from './context.ts';

export type SubtaskWrapper = ListrTaskWrapper<RunContext, any, any>;

export interface Subtask {
  readonly title: string;
  readonly run: (task: SubtaskWrapper) => Promise<void>;
}

export interface SubtaskOptions {
  /** true: all at once (default); n: at most n at a time */
  readonly concurrent?: boolean | number;
  /** what the subtasks are, for the stage's row: `1 of 3 <noun> failed` (default `checks`) */
  readonly noun?: string;
  /**
   * The stage's failure from its subtasks' (in the order they failed), once
   * every subtask has ended; default {@link stageFailure}. Undefined: the
   * stage passes.
   */
  readonly failure?: (failures: readonly Error[]) => StageError | InterruptedError | undefined;
  /** what the stage does once every subtask has ended and none failed (its failure fails the stage) */
  readonly after?: () => Promise<void>;
}

/**
 * A stage's failure whose parts its subtasks' rows already show: listr2
 * prints a failed task's error message at the task and again at each task
 * above it (the plain renderer), so the stage's error travels up through
 * listr2 as this, whose message is only a count, and the run reports
 * `failure` itself (lib/run/run.ts).
 */
export class ShownFailure extends Error {
  override name = 'ShownFailure';
  constructor(
    readonly failure: StageError | InterruptedError,
    summary: string,
  ) {
    super(summary);
  }
}

/** The stage's error from its subtasks' failures: the interruption if any, else every failure's message and hint. */
export function stageFailure(failures: readonly Error[]): StageError | InterruptedError | undefined {
  const interrupted = failures.find((f) => f instanceof InterruptedError);
  if (interrupted) return interrupted as InterruptedError;
  if (failures.length === 1 && failures[0] instanceof StageError) return failures[0];
  if (failures.length === 0) return undefined;
  return new StageError(failures.map((f) => f.message).join('\n'), mergedHints(failures));
}

/** Every distinct hint of the StageErrors among `failures`, in order. */
export function mergedHints(failures: readonly Error[]): string[] {
  return [...new Set(failures.flatMap((f) => (f instanceof StageError ? f.hints : [])))];
}

/**
 * The list for the stage's task to return (`return subtaskList(task, …)`):
 * an untitled group of the subtasks (its rows show directly under the
 * stage), then an untitled last step that fails the stage, with a
 * ShownFailure, when `options.failure` says so, and else runs `options.after`.
 */
export function subtaskList(parent: SubtaskWrapper, subtasks: readonly Subtask[], options: SubtaskOptions = {}): Listr<RunContext, any, any> {
  const failures: Error[] = [];
  const { concurrent = true, noun = 'checks', failure = stageFailure, after } = options;
  return parent.newListr<RunContext>(
    [
      {
        task: (_ctx, group) =>
          group.newListr<RunContext>(
            subtasks.map((sub) => ({
              title: sub.title,
              task: async (_c, task) => {
                try {
                  await sub.run(task);
                } catch (error) {
                  failures.push(error as Error);
                  throw error;
                }
              },
            })),
            // One failure does not stop the others: each shows on its row, the verdict comes after.
            { concurrent, exitOnError: false },
          ),
      },
      {
        task: async () => {
          const error = failure(failures);
          if (!error) return after?.();
          const summary = error instanceof InterruptedError ? 'interrupted' : `${failures.length} of ${subtasks.length} ${noun} failed`;
          throw new ShownFailure(error, summary);
        },
      },
    ],
    // Live view: a failed row shows its error in place of its title, and the untitled steps show nothing.
    { concurrent: false, exitOnError: true, rendererOptions: { collapseErrors: true } },
  );
}
