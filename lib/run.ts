/**
 * Executes a plan: the stages under listr2, then the report, which is
 * written whatever happened so that a failed or interrupted run still says
 * which host is in which state.
 */
import { Listr, PRESET_TIMESTAMP, type ListrRendererValue, type ListrTask } from 'listr2';
import { InterruptedError, StageError } from './errors.ts';
import type { Executor } from './exec/types.ts';
import type { DeployPlan, StageName } from './plan.ts';
import { type Comparison, recentMedians } from './report/compare.ts';
import { appendHistory, type HistoryEntry, historyPathFor, summarizeRun } from './report/history.ts';
import { withProgressTitle } from './report/progress.ts';
import { buildReport, type RunOutcome, type RunReport, writeReport } from './report/report.ts';
import { RunRecorder } from './report/timing.ts';
import { DeployLock } from './rollout/lock.ts';
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
  /** where the JSON report goes; undefined: not written (nor the history line) */
  readonly reportDir?: string | undefined;
  /** earlier runs, read once at the start: the stages' ETA */
  readonly history?: readonly HistoryEntry[] | undefined;
  /** take the fleet's deploy lock for the run; undefined: no lock (tests) */
  readonly lock?: { readonly command: string; readonly forceUnlock: boolean } | undefined;
  /** told things the operator must know that are not errors (lock taken over, …) */
  readonly notice?: ((text: string) => void) | undefined;
}

export interface RunResult {
  readonly outcome: RunOutcome;
  readonly report: RunReport;
  readonly reportPath?: string | undefined;
  readonly error?: Error | undefined;
}

/**
 * Wraps a stage so the recorder knows when it started, ended and how, and
 * its title shows the elapsed time and the ETA from recent runs (`usual`).
 */
function timed(name: StageName, stage: ListrTask<RunContext>, usual: Comparison | undefined): ListrTask<RunContext> {
  return {
    ...stage,
    task: async (ctx, task) => {
      ctx.recorder.startStage(name);
      const progress = withProgressTitle(task, { etaMs: usual?.stageMs[name] });
      try {
        await (stage.task as (c: RunContext, t: typeof task) => Promise<void>)(ctx, progress.task);
        ctx.recorder.endStage(name, 'success');
      } catch (error) {
        ctx.recorder.endStage(name, error instanceof InterruptedError || ctx.signal.aborted ? 'interrupted' : 'failed');
        throw error;
      } finally {
        progress.stop();
      }
    },
  };
}

export async function runPlan(plan: DeployPlan, options: RunOptions): Promise<RunResult> {
  const recorder = new RunRecorder();
  const ctx: RunContext = { plan, executor: options.executor, signal: options.signal, recorder, builds: [] };
  const renderer: ListrRendererValue = options.renderer;
  const usual = recentMedians(options.history ?? [], plan);
  const listr = new Listr<RunContext, ListrRendererValue, ListrRendererValue>(
    [
      timed('preflight', preflightTask(), usual),
      timed('evaluate', evaluateTask(), usual),
      timed('seed-build', seedBuildTask(), usual),
      timed('wait-for-cache', waitForCacheTask(), usual),
      timed('deploy', deployTask(), usual),
    ],
    {
      ctx,
      renderer,
      exitOnError: true,
      registerSignalListeners: false,
      collectErrors: false,
      // Timestamps for the plain renderer: CI logs are read after the fact.
      rendererOptions: { collapseSubtasks: false, showErrorMessage: true, ...(renderer === 'simple' ? { timestamp: PRESET_TIMESTAMP } : {}) },
    },
  );

  let error: Error | undefined;
  let lock: DeployLock | undefined;
  try {
    if (options.lock) {
      lock = await DeployLock.acquire({
        inventory: plan.inventory,
        executor: options.executor,
        onCoordinator: plan.onCoordinator,
        command: options.lock.command,
        forceUnlock: options.lock.forceUnlock,
      });
      if (lock.note) options.notice?.(lock.note);
    }
    await listr.run();
  } catch (caught) {
    error = options.signal.aborted ? new InterruptedError() : (caught as Error);
  } finally {
    await lock?.release().catch((e: Error) => options.notice?.(`could not release the deploy lock: ${e.message}`));
    // Not abortable: after Ctrl-C too, no ssh master outlives the run.
    await Promise.all(ctx.plan.deploy.closeConnections.map((command) => options.executor.run(command)));
  }
  const outcome: RunOutcome = error instanceof InterruptedError ? 'interrupted' : error ? 'failed' : 'success';
  recorder.closeOpenStages(outcome === 'interrupted' ? 'interrupted' : 'failed');

  const report = buildReport({
    recorder,
    outcome,
    goal: plan.goal,
    seed: ctx.plan.seed,
    seedFailover: ctx.seedFailover,
    flake: plan.flake,
    hosts: plan.hosts,
    baselineMinutes: plan.inventory.baselineMinutes,
    toplevels: ctx.toplevels && Object.fromEntries(Object.entries(ctx.toplevels).map(([h, t]) => [h, t.outPath])),
    builds: ctx.builds,
    commands: options.executor.log,
    error: error?.message,
    pinnedRoots: ctx.pinnedRoots,
    warnings: ctx.warnings,
  });
  const reportPath = options.reportDir ? await writeReport(options.reportDir, report) : undefined;
  // After the report file: every history line has its report.
  if (options.reportDir) await appendHistory(historyPathFor(options.reportDir), summarizeRun(report));
  if (error && !(error instanceof StageError) && !(error instanceof InterruptedError)) {
    // An unexpected failure inside a stage: keep it typed as a stage failure with its message.
    error = new StageError(error.message);
  }
  return { outcome, report, reportPath, error };
}
