/**
 * Executes a plan: the stages under listr2, then the report, which is
 * written whatever happened so that a failed or interrupted run still says
 * which host is in which state.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Chalk, type ChalkInstance } from 'chalk';
import { Listr, type ListrRendererValue, type ListrTask, ListrTaskEventType, ListrTaskState } from 'listr2';
import { InterruptedError, StageError } from '../errors.ts';
import type { Executor } from '../exec/types.ts';
import { toplevelOf } from '../plan/placeholders.ts';
import type { RunnablePlan, StageName } from '../plan/types.ts';
import { preferredSeed } from '../plan/waves.ts';
import { type Comparison, recentMedians } from '../report/compare.ts';
import { appendHistory, type HistoryEntry, historyPathFor, summarizeRun } from '../report/history.ts';
import { withProgressTitle } from '../report/progress.ts';
import { buildReport, type RunOutcome, type RunReport, writeReport } from '../report/report.ts';
import { RunRecorder } from '../report/timing.ts';
import { closeConnections, type RunContext } from '../stages/context.ts';
import { deployTask } from '../stages/deploy.ts';
import { evaluateTask, startEvaluations } from '../stages/evaluate.ts';
import { preflightTask, targetsPreflightTask } from '../stages/preflight.ts';
import { resolveTask } from '../stages/resolve.ts';
import { seedBuildTask, startHeadStarts } from '../stages/seed-build.ts';
import { ShownFailure } from '../stages/subtasks.ts';
import { waitForCacheTask } from '../stages/wait-for-cache.ts';
import { DeployLock } from './lock.ts';
import { listrRendererOptions, type RendererChoice } from './renderer.ts';

export type { RendererChoice } from './renderer.ts';

/** How to execute a plan (lib/exec/types.ts RunOptions is how to run one command). */
export interface RunPlanOptions {
  readonly executor: Executor;
  readonly signal: AbortSignal;
  readonly renderer: RendererChoice;
  /** how the task list is coloured (lib/cli/colour.ts decides); default: not at all */
  readonly colours?: ChalkInstance | undefined;
  /** where the JSON report goes; undefined: not written (nor the history line) */
  readonly reportDir?: string | undefined;
  /** earlier runs, read once at the start: the stages' ETA */
  readonly history?: readonly HistoryEntry[] | undefined;
  /** take the fleet's deploy lock for the run, when the plan has one (a build has none); undefined: no lock (tests) */
  readonly lock?: { readonly command: string; readonly forceUnlock: boolean } | undefined;
  /** told things the operator must know that are not errors (lock taken over, …) */
  readonly notice?: ((text: string) => void) | undefined;
  /** --interactive: asked before each host's activation, with its closure diff */
  readonly confirmActivation?: RunContext['confirmActivation'];
  /** names this run's canaries on the targets (`{{run-id}}`); default: time and pid */
  readonly runId?: string | undefined;
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
 * A stage that returns its subtasks (lib/stages/subtasks.ts) ends when they
 * have: at a last untitled step of theirs when it passes (before listr2
 * marks it done, so its final title is what the renderer shows), when
 * listr2 marks it failed otherwise.
 */
function timed(name: StageName, stage: ListrTask<RunContext>, usual: Comparison | undefined): ListrTask<RunContext> {
  return {
    ...stage,
    task: async (ctx, task) => {
      ctx.recorder.startStage(name);
      const progress = withProgressTitle(task, { etaMs: usual?.stageMs[name] });
      let ended = false;
      const end = (outcome: 'success' | 'failed' | 'interrupted') => {
        if (ended) return;
        ended = true;
        ctx.recorder.endStage(name, outcome);
        progress.stop();
      };
      const fail = (error?: unknown) => end(error instanceof InterruptedError || ctx.signal.aborted ? 'interrupted' : 'failed');
      try {
        const result: unknown = await (stage.task as (c: RunContext, t: typeof task) => unknown)(ctx, progress.task);
        if (!(result instanceof Listr)) {
          end('success');
          return;
        }
        result.add({ task: () => end('success') });
        task.task.on(ListrTaskEventType.STATE, (state) => state === ListrTaskState.FAILED && fail());
        return result;
      } catch (error) {
        fail(error);
        throw error;
      }
    },
  };
}

/** The stage tasks of each operation (the plan's `stages` say which run, in which order). */
const STAGE_TASKS: Readonly<Record<RunnablePlan['operation'], Partial<Record<StageName, () => ListrTask<RunContext>>>>> = {
  deploy: { preflight: preflightTask, evaluate: evaluateTask, 'seed-build': seedBuildTask, 'wait-for-cache': waitForCacheTask, deploy: deployTask },
  rollback: { preflight: targetsPreflightTask, resolve: resolveTask, deploy: deployTask },
};

/**
 * Runs the plan's stages, taking the lock first when asked, and writes the
 * report (and its history line) whatever happened. The run's own values for
 * the plan's placeholders are made here: its id, and a private directory
 * (0700, removed at the end) for the ssh control sockets. Never throws for a
 * failed stage: the result carries the error.
 */
export async function runPlan(plan: RunnablePlan, options: RunPlanOptions): Promise<RunResult> {
  const recorder = new RunRecorder();
  const runId = options.runId ?? `${Date.now().toString(36)}-${process.pid}`;
  // mkdtemp: 0700 and never an existing directory, so no one else's socket is used.
  // Not under a TMPDIR with whitespace: NIX_SSHOPTS, which carries the ControlPath, is split on it.
  const sshControlDir = await mkdtemp(join(/\s/.test(tmpdir()) ? '/tmp' : tmpdir(), 'avalanche-ssh-'));
  const ctx: RunContext = {
    plan,
    // Until preflight hears from them: each system's preferred seed, or the coordinator building here.
    seeds: plan.operation === 'deploy' ? Object.fromEntries(plan.builds.map((b) => [b.system, preferredSeed(b, plan.coordinator.name)])) : {},
    values: { 'run-id': runId, 'ssh-control-dir': sshControlDir },
    executor: options.executor,
    signal: options.signal,
    recorder,
    confirmActivation: options.confirmActivation,
    builds: [],
    background: new AbortController(),
  };
  const renderer: ListrRendererValue = options.renderer;
  const colours = options.colours ?? new Chalk({ level: 0 });
  const usual = recentMedians(options.history ?? [], plan);
  const listr = new Listr<RunContext, ListrRendererValue, ListrRendererValue>(
    plan.stages.filter((name) => name !== 'report').map((name) => timed(name, STAGE_TASKS[plan.operation][name]!(), usual)),
    {
      ctx,
      renderer,
      exitOnError: true,
      registerSignalListeners: false,
      collectErrors: false,
      ...listrRendererOptions(options.renderer, colours),
    },
  );

  let error: Error | undefined;
  let lock: DeployLock | undefined;
  try {
    if (options.lock && plan.lock) {
      lock = await DeployLock.acquire({
        lock: plan.lock,
        coordinator: plan.coordinator,
        executor: options.executor,
        command: options.lock.command,
        forceUnlock: options.lock.forceUnlock,
      });
      if (lock.note) options.notice?.(lock.note);
    }
    // A deploy's evaluations, then each system's head start, run beside preflight: they read the flake here and
    // build on the builders, touching no target; the evaluate and seed-build stages wait for them.
    if (plan.operation === 'deploy') {
      ctx.evaluations = startEvaluations(ctx);
      startHeadStarts(ctx);
    }
    await listr.run();
  } catch (caught) {
    // A stage's failure its rows have shown travels through listr2 wrapped (lib/stages/subtasks.ts).
    error = options.signal.aborted ? new InterruptedError() : caught instanceof ShownFailure ? caught.failure : (caught as Error);
  } finally {
    // A failed preflight (or any stage) leaves no evaluation or build running: stopped, and waited for (their
    // processes killed) before the lock is released and the report is made.
    ctx.background?.abort();
    await Promise.allSettled([...(ctx.evaluations?.running ?? []).map((e) => e.done), ...Object.values(ctx.headStarts ?? {}).map((h) => h.done)]);
    await lock?.release().catch((e: Error) => options.notice?.(`could not release the deploy lock: ${e.message}`));
    // Not abortable: after Ctrl-C too, no ssh master outlives the run.
    const builders = plan.operation === 'deploy' ? plan.builds.flatMap((build) => build.builders) : [];
    await closeConnections(ctx, [...Object.values(plan.deploy.hosts), ...builders].map((reached) => reached.closeConnection));
    await rm(sshControlDir, { recursive: true, force: true });
  }
  const outcome: RunOutcome = error instanceof InterruptedError ? 'interrupted' : error ? 'failed' : 'success';
  recorder.closeOpenStages(outcome === 'interrupted' ? 'interrupted' : 'failed');
  // A head start whose stage never ran (a target failed preflight, Ctrl-C) ends its system's build span here.
  for (const [system, head] of Object.entries(ctx.headStarts ?? {})) {
    recorder.endBuild(system, head.succeeded() ? 'success' : outcome === 'interrupted' ? 'interrupted' : 'failed', head.built.length);
  }

  const report = buildReport({
    recorder,
    outcome,
    operation: plan.operation,
    stages: plan.stages,
    goal: plan.goal,
    // A build deploys nothing: no verdict against the one-by-one deploy.
    ...(plan.operation === 'deploy' ? { seed: ctx.seeds[plan.builds[0]!.system] ?? '', flake: plan.flake, ...(plan.goal === 'build' ? {} : { baselineMinutes: plan.baselineMinutes }) } : {}),
    seedFailover: ctx.seedFailover,
    hosts: plan.hosts,
    toplevels: Object.fromEntries(plan.hosts.flatMap((h) => (toplevelOf(ctx.values, h) ? [[h, toplevelOf(ctx.values, h)!]] : []))),
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
