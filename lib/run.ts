/**
 * Executes a plan: the stages under listr2, then the report, which is
 * written whatever happened so that a failed or interrupted run still says
 * which host is in which state.
 */
import { Listr, type ListrRendererValue, type ListrTask } from 'listr2';
import { InterruptedError, StageError } from './errors.ts';
import type { Executor } from './exec/types.ts';
import type { DeployPlan, StageName } from './plan.ts';
import { buildReport, type RunOutcome, type RunReport, writeReport } from './report/report.ts';
import { RunRecorder } from './report/timing.ts';
import type { RunContext } from './stages/context.ts';
import { deployTask } from './stages/deploy.ts';
import { evaluateTask } from './stages/evaluate.ts';
import { preflightTask } from './stages/preflight.ts';
import { seedBuildTask } from './stages/seed-build.ts';
import { waitForCacheTask } from './stages/wait-for-cache.ts';

export type RendererChoice = 'default' | 'simple' | 'silent';

export interface RunOptions {
  readonly executor: Executor;
  readonly signal: AbortSignal;
  readonly renderer: RendererChoice;
  /** where the JSON report goes; undefined: not written */
  readonly reportDir?: string | undefined;
}

export interface RunResult {
  readonly outcome: RunOutcome;
  readonly report: RunReport;
  readonly reportPath?: string | undefined;
  readonly error?: Error | undefined;
}

/** Wraps a stage so the recorder knows when it started, ended and how. */
function timed(name: StageName, stage: ListrTask<RunContext>): ListrTask<RunContext> {
  return {
    ...stage,
    task: async (ctx, task) => {
      ctx.recorder.startStage(name);
      try {
        await (stage.task as (c: RunContext, t: typeof task) => Promise<void>)(ctx, task);
        ctx.recorder.endStage(name, 'success');
      } catch (error) {
        ctx.recorder.endStage(name, error instanceof InterruptedError || ctx.signal.aborted ? 'interrupted' : 'failed');
        throw error;
      }
    },
  };
}

export async function runPlan(plan: DeployPlan, options: RunOptions): Promise<RunResult> {
  const recorder = new RunRecorder();
  const ctx: RunContext = { plan, executor: options.executor, signal: options.signal, recorder, builds: [] };
  const renderer: ListrRendererValue = options.renderer;
  const listr = new Listr<RunContext, ListrRendererValue, ListrRendererValue>(
    [
      timed('preflight', preflightTask()),
      timed('evaluate', evaluateTask()),
      timed('seed-build', seedBuildTask()),
      timed('wait-for-cache', waitForCacheTask()),
      timed('deploy', deployTask()),
    ],
    {
      ctx,
      renderer,
      exitOnError: true,
      registerSignalListeners: false,
      collectErrors: false,
      rendererOptions: { collapseSubtasks: false, showErrorMessage: true },
    },
  );

  let error: Error | undefined;
  try {
    await listr.run();
  } catch (caught) {
    error = options.signal.aborted ? new InterruptedError() : (caught as Error);
  }
  const outcome: RunOutcome = error instanceof InterruptedError ? 'interrupted' : error ? 'failed' : 'success';
  recorder.closeOpenStages(outcome === 'interrupted' ? 'interrupted' : 'failed');

  const report = buildReport({
    recorder,
    outcome,
    goal: plan.goal,
    seed: plan.seed,
    flake: plan.flake,
    hosts: plan.hosts,
    baselineMinutes: plan.inventory.baselineMinutes,
    toplevels: ctx.toplevels && Object.fromEntries(Object.entries(ctx.toplevels).map(([h, t]) => [h, t.outPath])),
    builds: ctx.builds,
    commands: options.executor.log,
    error: error?.message,
  });
  const reportPath = options.reportDir ? await writeReport(options.reportDir, report) : undefined;
  if (error && !(error instanceof StageError) && !(error instanceof InterruptedError)) {
    // An unexpected failure inside a stage: keep it typed as a stage failure with its message.
    error = new StageError(error.message);
  }
  return { outcome, report, reportPath, error };
}
