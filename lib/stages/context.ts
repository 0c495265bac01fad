/** State shared by the stages of one run. */
import type { Executor } from '../exec/types.ts';
import type { BuildRecord } from '../nix/build-log.ts';
import { fillCommand, type PlaceholderValues } from '../plan/placeholders.ts';
import type { DeployPlan, PlannedCommand, RunnablePlan } from '../plan/types.ts';
import type { PinnedRoot } from '../report/report.ts';
import type { RunRecorder } from '../report/timing.ts';
import { type Deferred, deferred } from '../util/deferred.ts';
import type { HostDeps } from './deploy-host.ts';

export interface Toplevel {
  readonly drvPath: string;
  readonly outPath: string;
}

/** One of the plan's evaluations, running or ended (lib/stages/evaluate.ts). */
export interface RunningEvaluation {
  readonly hosts: readonly string[];
  /** resolves once its toplevels are in the run's values; rejects with the failure (StageError, or InterruptedError when stopped) */
  readonly done: Promise<void>;
  /** ms it took, once ended */
  durationMs?: number;
}

/** A deploy's evaluations, started with the run (lib/stages/evaluate.ts startEvaluations). */
export interface Evaluations {
  readonly running: readonly RunningEvaluation[];
  /** where their latest stderr line goes (the evaluate stage's row, while it shows) */
  show: (line: string) => void;
}

/** A system's head start, begun before the seed-build stage (lib/stages/seed-build.ts startHeadStarts). */
export interface HeadStart {
  /** resolves when its build ended well; rejects with its failure */
  readonly done: Promise<void>;
  /** resolves once Nix's log says it began building a derivation, or once it ended (well or not); never rejects */
  readonly underway: Promise<void>;
  /** whether its build ended well (so far) */
  readonly succeeded: () => boolean;
  /** what Nix's log says it built, where (also in the run's `builds` once it ended) */
  readonly built: BuildRecord[];
  /** stops its build (the system's other build failed) */
  readonly stop: () => void;
  /** its log lines go to `say` from now on (the system's row), after the last few it printed before */
  readonly attach: (say: (line: string) => void) => void;
}

export interface RunContext {
  /** the whole plan, made before the run; the stages execute it and never plan again */
  readonly plan: RunnablePlan;
  /**
   * A deploy's seed per Nix system: the first of its builders that answered
   * in preflight (the preferred one unless it failed over), or the
   * coordinator for a system built here; none for a rollback
   */
  seeds: Record<string, string>;
  /** why a seed changed, for the report */
  seedFailover?: string;
  /** what the run knows for the plan's placeholders: its id and ssh control directory, then the evaluated toplevels */
  values: Record<string, string>;
  readonly executor: Executor;
  readonly signal: AbortSignal;
  readonly recorder: RunRecorder;
  /** a deploy's evaluated toplevels (derivation and output paths), each evaluation's as it ends; the placeholders hold every run's output paths */
  toplevels?: Record<string, Toplevel>;
  /** a deploy's evaluations, running from the start of the run */
  evaluations?: Evaluations;
  /** a deploy's head starts by system, begun beside preflight once their seed answered and their first host is evaluated */
  headStarts?: Record<string, HeadStart>;
  /**
   * Settled when preflight's checks of this machine a build needs have
   * ended: resolved when they all passed (its Nix obeys --builders, the GC
   * roots, the cache), rejected at the first failure; neither the builders'
   * ({@link seedAnswered}) nor the targets' checks are among them
   */
  buildChecked?: Deferred;
  /**
   * Per system built on builders, settled by preflight's builder check:
   * resolved as soon as its seed is known (the preferred seed answered, or
   * else the first builder that did: `ctx.seeds` and
   * `{{seed-builder:<system>}}` hold it), rejected when none answered
   * ({@link seedAnswered})
   */
  seedsAnswered?: Record<string, Deferred>;
  /** aborted when the run ends: stops whatever was begun before its stage and still runs (a failed preflight leaves nothing behind) */
  readonly background?: AbortController;
  builds: BuildRecord[];
  /** GC roots made on the cache host after the seed build */
  pinnedRoots?: PinnedRoot[];
  /** --interactive: asks before each host's activation (lib/stages/deploy-host.ts HostDeps) */
  readonly confirmActivation?: HostDeps['confirmActivation'];
  /** what was accepted against the defaults (--allow-unsigned), for the output and the report */
  warnings?: string[];
  /** the reused SSH connections closed before the run's end, or being closed, by the plan's command ({@link closeConnections}) */
  closing?: Map<PlannedCommand, Promise<unknown>>;
}

/**
 * Closes reused SSH connections (`ssh -O exit`) once nothing more of the run
 * uses them, each of the plan's close commands once: a target's when its
 * deploy ended, the builders' when the seed build ended well, the rest at
 * the run's end (lib/run/run.ts), which waits for all. Spread over the run,
 * these commands do not pile up at its end (one per target and builder: 60
 * at 30 hosts). Told apart by the plan's entry, not by what they run: a
 * builder and a target that are the same user@host share a master, which
 * the target's deploy opens again after the builder's close, and closes
 * itself. Not abortable: after Ctrl-C too, no ssh master outlives the run.
 * Never rejects: a master that is gone already (ControlPersist ran out)
 * makes `ssh -O exit` fail, and that is fine.
 */
export function closeConnections(ctx: Pick<RunContext, 'values' | 'executor' | 'closing'>, commands: readonly (PlannedCommand | undefined)[]): Promise<void> {
  const closing = (ctx.closing ??= new Map());
  for (const planned of commands) {
    if (planned && !closing.has(planned)) closing.set(planned, ctx.executor.run(fillCommand(planned, ctx.values)).catch(() => undefined));
  }
  return Promise.all(closing.values()).then(() => undefined);
}

/** The deferred that says a system's seed is known (created by whichever asks first: the head start, or preflight). */
export function seedAnswered(ctx: RunContext, system: string): Deferred {
  const all = (ctx.seedsAnswered ??= {});
  return (all[system] ??= deferred());
}

/**
 * Resolves once every head start is underway ({@link HeadStart.underway}),
 * at once when there is none. What no head start needs (the targets' logins,
 * the other hosts' evaluation) waits for it: on a coordinator with few
 * CPUs, ssh key exchanges and an evaluator beside it slow the head starts'
 * way to their seeds, the run's critical path. Never rejects.
 */
export function headStartsUnderway(ctx: Pick<RunContext, 'headStarts'>): Promise<void> {
  return Promise.all(Object.values(ctx.headStarts ?? {}).map((head) => head.underway)).then(() => undefined);
}

/** A planned command as it runs now: its placeholders filled with what the run knows (plus `extra`). */
export function filled(ctx: Pick<RunContext, 'values'>, command: PlannedCommand, extra: PlaceholderValues = {}): PlannedCommand {
  return fillCommand(command, { ...ctx.values, ...extra });
}

/** A deploy's plan, for the stages only a deploy has; throws inside a run of another operation (a bug). */
export function deployRun(ctx: RunContext): { readonly plan: DeployPlan } {
  if (ctx.plan.operation !== 'deploy') throw new Error(`a deploy stage in a ${ctx.plan.operation} run`);
  return { plan: ctx.plan };
}
