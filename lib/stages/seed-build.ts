/**
 * Stage 3: every selected toplevel built once, each Nix system's in its own
 * builds at the same time (on that system's builders, or natively here),
 * then landed in the cache host's store and pinned there.
 *
 * A system's head start (its first host's toplevel: the kernel and whatever
 * else the toplevels share) begins before this stage, beside preflight, on
 * the seed as soon as it answered, this machine's checks a build needs have
 * passed and that host is evaluated ({@link startHeadStarts}); the stage
 * builds the other toplevels once they are evaluated, beside it.
 */
import type { ListrTask } from 'listr2';
import { gcRootHints } from '../cache/hints.ts';
import { sleep } from '../backoff.ts';
import { InterruptedError, StageError } from '../errors.ts';
import { BuildLogRecorder, type BuildRecord, drvName, isBuiltOn, isOutputNoise, parseBuildResults, tailWithoutNoise } from '../nix/build-log.ts';
import { fillText } from '../plan/placeholders.ts';
import { sshDestination } from '../remote/host.ts';
import type { PlannedCommand, SystemBuild } from '../plan/types.ts';
import { deferred } from '../util/deferred.ts';
import { evaluated, unlessStopped } from './evaluate.ts';
import { closeConnections, deployRun, filled, type HeadStart, type RunContext, seedAnswered } from './context.ts';
import { expectSuccess } from './failure.ts';
import { type SubtaskWrapper, subtaskList } from './subtasks.ts';

export function seedBuildTask(): ListrTask<RunContext> {
  return {
    title: 'seed build',
    task: (ctx, task) => {
      const { plan } = deployRun(ctx);
      task.title = `seed build: ${plan.builds.map((b) => `${b.system} on ${whereBuilt(ctx, b)}`).join(', ')}`;
      return subtaskList(
        task,
        [
          ...plan.builds.map((build) => ({
            title: `${build.system} on ${whereBuilt(ctx, build)}`,
            run: (sub: SubtaskWrapper) => buildSystem(ctx, build, sub),
          })),
        ],
        {
          noun: 'system builds',
          // The toplevels land in the coordinator's store and are pinned once every system's build has ended well.
          after: async () => {
            // The builds are over: the builders' connections close meanwhile (not waited for), not at the run's end.
            void closeConnections(ctx, plan.builds.flatMap((b) => b.builders.map((x) => x.closeConnection)));
            await landAndPin(ctx, task);
            task.title = `seed build: ${plan.builds.map((b) => `${b.system} on ${whereBuilt(ctx, b)}`).join(', ')}; pinned in ${plan.preflight.gcRootDir}`;
          },
        },
      );
    },
    rendererOptions: { outputBar: 5 },
  };
}

/** Where a system builds: its seed (the first of its builders that answered), or this machine. */
function whereBuilt(ctx: RunContext, build: SystemBuild): string {
  return build.on === 'here' ? `${deployRun(ctx).plan.coordinator.name} (here)` : seedOf(ctx, build);
}

/**
 * Begins each system's head start in the background (stopped when the run
 * ends: `ctx.background`): once preflight's checks a build needs have
 * passed (`ctx.buildChecked`: this machine's Nix obeys --builders, the GC
 * roots, the cache), its seed answered (it builds there alone; not the
 * other builders' nor the targets' logins, the slowest on a large fleet)
 * and its first host is evaluated. Nothing of it touches a target. Its
 * failure reaches the seed-build stage.
 */
export function startHeadStarts(ctx: RunContext): void {
  const { plan } = deployRun(ctx);
  ctx.buildChecked ??= deferred();
  ctx.headStarts = Object.fromEntries(
    plan.builds.flatMap((build) => {
      const head = build.headStart;
      if (!head) return [];
      const stopper = new AbortController();
      const signal = AbortSignal.any([ctx.signal, stopper.signal, ...(ctx.background ? [ctx.background.signal] : [])]);
      const built: BuildRecord[] = [];
      let succeeded = false;
      const underway = deferred();
      const buildStopListeners = new Set<(drvPath: string) => void>();
      // Until its row shows (buildSystem attaches it), the last lines it printed wait to be shown there.
      const early: string[] = [];
      let show = (line: string) => {
        if (early.push(line) > EARLY_LINES) early.shift();
      };
      const done = (async () => {
        const seed = build.on === 'builders' ? [seedAnswered(ctx, build.system).promise] : [];
        await unlessStopped(Promise.all([ctx.buildChecked?.promise, ...seed]), signal, "preflight's checks for the build");
        await evaluated(ctx, head.hosts, signal);
        startBuildSpan(ctx, build);
        show(`building ${head.hosts.join(', ')} first, while the others are evaluated`);
        try {
          await runBuild(ctx, build, { ...head, on: 'seed' }, (line) => show(line), signal, built, {
            buildStart: () => underway.resolve(),
            buildStop: (drvPath) => {
              for (const listener of [...buildStopListeners]) listener(drvPath);
            },
          });
          succeeded = true;
        } finally {
          // In the report whether or not the seed-build stage ever runs (a target failing preflight stops it first).
          ctx.builds.push(...built);
        }
      })();
      done.catch(() => undefined);
      void done.finally(() => underway.resolve()).catch(() => undefined);
      const entry: HeadStart = {
        done,
        underway: underway.promise,
        succeeded: () => succeeded,
        built,
        stop: () => stopper.abort(),
        onBuildStop: (listener) => {
          buildStopListeners.add(listener);
          return () => buildStopListeners.delete(listener);
        },
        attach: (say) => {
          for (const line of early.splice(0)) say(line);
          show = say;
        },
      };
      return [[build.system, entry]];
    }),
  );
}

/** How many of a head start's lines printed before its row shows are shown there (the row's output bar shows 5). */
const EARLY_LINES = 10;

/** The system's build on the run's time axis starts once, with whichever of its builds starts first. */
function startBuildSpan(ctx: RunContext, build: SystemBuild): void {
  if (ctx.recorder.hasBuild(build.system)) return;
  ctx.recorder.startBuild(build.system, { on: build.on, seed: seedOf(ctx, build), hosts: build.hosts });
}

/**
 * One system's builds, recorded on the run's time axis as one: its head
 * start (begun before this stage) beside the build of the other toplevels
 * once they are evaluated. The first failure stops the other.
 */
async function buildSystem(ctx: RunContext, build: SystemBuild, sub: SubtaskWrapper): Promise<void> {
  const { plan } = deployRun(ctx);
  // Prefixed when several systems build: the plain renderer (CI logs) interleaves their lines.
  const say = (line: string) => (sub.output = plan.builds.length > 1 ? `${build.system}: ${line}` : line);
  const head = ctx.headStarts?.[build.system];
  // The build below leaves the head start's toplevel to it: without it, that toplevel would not be built.
  if (build.headStart && !head) throw new Error(`the head start of ${build.system} was never started (lib/run/run.ts startHeadStarts)`);
  head?.attach(say);
  startBuildSpan(ctx, build);
  const built: BuildRecord[] = [];
  const stopper = new AbortController();
  const signal = AbortSignal.any([ctx.signal, stopper.signal]);
  let outcome: 'success' | 'failed' = 'failed';
  try {
    const others = (async () => {
      const hosts = build.hosts.filter((h) => !build.headStart?.hosts.includes(h));
      if (head) say(`evaluating ${hosts.join(', ')}; building ${build.headStart!.hosts.join(', ')} meanwhile`);
      await evaluated(ctx, hosts, signal);
      return buildOthers(ctx, build, { hosts, build: build.build, on: 'builders' }, head, say, signal, built);
    })();
    try {
      await Promise.all([head?.done, others]);
    } catch (error) {
      stopper.abort();
      head?.stop();
      await Promise.allSettled([head?.done, others]);
      throw error;
    }
    sub.title = `${build.system} on ${whereBuilt(ctx, build)}: ${summarizeBuilds([...(head?.built ?? []), ...built])}`;
    outcome = 'success';
  } finally {
    ctx.builds.push(...built);
    ctx.recorder.endBuild(build.system, ctx.signal.aborted ? 'interrupted' : outcome, (head?.built.length ?? 0) + built.length);
  }
}

/** How many builds of the others run at most, beside each other, the first included ({@link buildOthers}). */
const MAX_ATTEMPTS = 4;
/**
 * Once one build of the others succeeded, how long another that is building
 * a derivation is given to say that build ended (ms): Nix says so just after
 * it registered the outputs, which the one that succeeded found valid.
 */
const END_TOLD_WITHIN_MS = 2000;

/**
 * The build of a system's other toplevels, beside its head start. When the
 * head start's log says a build of its ended (the kernel, above all; not its
 * own toplevel) while the newest attempt's log says it builds nothing and
 * waits for another process's lock on an output, the same build starts again
 * beside it: Nix looks at such a lock again only every `build-poll-interval`
 * seconds (the seed builds set 1, lib/nix/commands.ts; Nix's default is 5,
 * and its worker waits whole seconds), on average half a second after it was
 * freed, while a `nix build` started anew finds the output valid and
 * dispatches at once (Nix ends a build's activity after it registered the
 * outputs and freed their locks). The waiting one is not stopped then: a
 * daemon's worker may take the freed lock and build before a stop reaches
 * it, and a client stopped meanwhile would never tell what it built.
 *
 * The first attempt to end decides. A success stops the others (all ask for
 * the same outputs, so whatever another was building is built by then: the
 * one that succeeded waited for its lock), each once its log says no build of
 * its runs any more ({@link END_TOLD_WITHIN_MS} at most); a failure stops
 * them at once and is the build's failure. So is any other failure of any of
 * them, but one from being stopped here (an interruption of the run is one).
 * All are waited for; the report has each derivation any of them began,
 * once, and where each was built is checked over all their records. The
 * first attempt's timeout bounds the whole (each has the planned timeout
 * from its own start; then up to END_TOLD_WITHIN_MS and the kill's grace).
 * At most {@link MAX_ATTEMPTS}.
 */
async function buildOthers(
  ctx: RunContext,
  build: SystemBuild,
  of: Parameters<typeof runBuild>[2],
  head: HeadStart | undefined,
  say: (line: string) => void,
  signal: AbortSignal,
  built: BuildRecord[],
): Promise<void> {
  // The head start's own toplevels are nothing the others wait for.
  const own = new Set(build.headStart?.hosts.map((host) => ctx.toplevels?.[host]?.drvPath));
  const decided = new AbortController();
  const attempts: Attempt[] = [];
  let settle!: { resolve: (winner: Attempt) => void; reject: (error: unknown) => void };
  const outcome = new Promise<Attempt>((resolve, reject) => (settle = { resolve, reject }));
  const start = () => {
    const log = new BuildLogRecorder();
    const stop = new AbortController();
    const idle = new Set<() => void>();
    const attempt: Attempt = {
      log,
      builds: [],
      done: Promise.resolve(),
      stoppedHere: false,
      stop: () => {
        if (!stop.signal.aborted) attempt.stoppedHere = !signal.aborted;
        stop.abort();
      },
      untilIdle: () => new Promise((resolve) => (log.building ? idle.add(resolve) : resolve())),
    };
    // Once decided, what the others print is of their stop.
    const sayUndecided = (line: string) => (decided.signal.aborted ? undefined : say(line));
    attempt.done = runBuild(ctx, build, of, sayUndecided, AbortSignal.any([signal, stop.signal]), attempt.builds, {
      log,
      placement: 'checked by the caller',
      buildStop: () => {
        if (!log.building) for (const resolve of idle) resolve();
      },
    });
    attempt.done.then(
      () => decide(() => settle.resolve(attempt)),
      (error) => decide(() => settle.reject(error)),
    );
    attempts.push(attempt);
    return attempt;
  };
  const decide = (how: () => void) => {
    if (decided.signal.aborted) return;
    decided.abort();
    how();
  };
  let newest = start();
  const off = head?.onBuildStop((drvPath) => {
    if (attempts.length >= MAX_ATTEMPTS || !newest.log.waitingForLock || newest.log.building || own.has(drvPath) || decided.signal.aborted || signal.aborted) return;
    say(`the head start built ${drvName(drvPath)}, which this build waited for: starting it again beside it`);
    newest = start();
  });
  try {
    const winner = await outcome.catch((error: unknown) => {
      for (const attempt of attempts) attempt.stop();
      throw error;
    });
    await Promise.all(
      attempts.map(async (attempt) => {
        if (attempt === winner) return;
        const waited = new AbortController();
        await Promise.race([attempt.untilIdle(), attempt.done.catch(() => undefined), sleep(END_TOLD_WITHIN_MS, AbortSignal.any([signal, waited.signal]))]);
        waited.abort();
        attempt.stop();
      }),
    );
    // Any failure but one from being stopped here is the build's, whoever succeeded (the run's interruption too).
    const settled = await Promise.allSettled(attempts.map((a) => a.done));
    settled.forEach((result, i) => {
      if (result.status === 'rejected' && !(result.reason instanceof InterruptedError && attempts[i]!.stoppedHere)) throw result.reason;
    });
    // Every record, a derivation's second one included.
    expectBuiltWhereAllowed(ctx, build, of.on, attempts.flatMap((a) => a.builds), attempts.some((a) => a.log.ignoredSettings.has('builders')));
  } finally {
    off?.();
    for (const attempt of attempts) attempt.stop();
    await Promise.allSettled(attempts.map((a) => a.done));
    built.push(...onceEach(attempts.flatMap((a) => a.builds)));
  }
}

/** One `nix build` of the others ({@link buildOthers}). */
interface Attempt {
  readonly log: BuildLogRecorder;
  /** stops it (its run's tree killed), noting whether that was this stage's doing or the run's interruption */
  readonly stop: () => void;
  stoppedHere: boolean;
  readonly builds: BuildRecord[];
  done: Promise<void>;
  /** settles once its log says no build of its runs */
  readonly untilIdle: () => Promise<void>;
}

/** Each derivation once, the record that saw its end when one did; in the order they began. */
function onceEach(builds: readonly BuildRecord[]): BuildRecord[] {
  const byDrv = new Map<string, BuildRecord>();
  for (const b of builds) {
    const seen = byDrv.get(b.drvPath);
    if (!seen || (seen.endedAt === undefined && b.endedAt !== undefined)) byDrv.set(b.drvPath, b);
  }
  return [...byDrv.values()].sort((a, b) => (a.startedAt ?? 0) - (b.startedAt ?? 0));
}

/**
 * One `nix build` of a system: what Nix's log says it built where (the
 * report's "built on" comes from there, never from the plan; appended to
 * `built`), checked against the evaluated toplevels it was asked for and,
 * unless its caller checks that over several builds, against where it may
 * build (the builders its --builders named: the seed, or all that answered;
 * or this machine).
 */
async function runBuild(
  ctx: RunContext,
  build: SystemBuild,
  /** `on`: the builders its --builders names (the head start: the seed alone) */
  of: { readonly hosts: readonly string[]; readonly build: PlannedCommand; readonly on: 'seed' | 'builders' },
  say: (line: string) => void,
  signal: AbortSignal,
  built: BuildRecord[],
  /**
   * `log`: the recorder of Nix's log to use (a new one when absent); `buildStart`/`buildStop`: at each
   * derivation Nix's log says it began building, or ended; `placement`: whether where it built is
   * checked here (by default) or by the caller, over several builds
   */
  on: {
    readonly log?: BuildLogRecorder;
    readonly buildStart?: () => void;
    readonly buildStop?: (drvPath: string) => void;
    readonly placement?: 'checked here' | 'checked by the caller';
  } = {},
): Promise<void> {
  const { plan } = deployRun(ctx);
  const log = on.log ?? new BuildLogRecorder();
  const command = filled(ctx, of.build);
  try {
    const result = await ctx.executor.run(command, {
      signal,
      onLine: (line, stream) => {
        const event = log.add(line, stream);
        if (!event || stream === 'stdout') return;
        if (event.kind === 'build-start') {
          on.buildStart?.();
          say(`building ${drvName(event.drvPath)} on ${event.machine ?? 'this machine'}`);
        } else if (event.kind === 'build-stop') on.buildStop?.(event.drvPath);
        else if (event.kind === 'build-log') say(`${event.drvName}> ${event.line}`);
        else if (!isOutputNoise(event.text)) say(event.text);
      },
    });
    // What the log said; if it said nothing (nix did not start), whatever came out that is neither a log record nor noise (the --json result).
    const told = log.failureLines();
    const shown = told.length ? told : tailWithoutNoise(result);
    const ignoredBuilders = log.ignoredSettings.has('builders');
    const hints = placementHints(ignoredBuilders, placement(ctx, build, of.on, log.builds).elsewhere, plan.preflight.nixTrust.user);
    expectSuccess(`seed build of ${build.system} on ${whereBuilt(ctx, build)} failed`, command, result, hints, shown);
    if (on.placement !== 'checked by the caller') expectBuiltWhereAllowed(ctx, build, of.on, log.builds, ignoredBuilders);
    const outputs = new Set(parseBuildResults(result.stdout).flatMap((r) => Object.values(r.outputs)));
    const missing = of.hosts.filter((host) => !outputs.has(ctx.toplevels?.[host]?.outPath ?? ''));
    if (missing.length) throw new StageError(`the seed build did not produce the evaluated toplevel of ${missing.join(', ')}`);
  } finally {
    // Whatever it built before failing too: the report says where.
    built.push(...log.builds);
  }
}

/** The builder a system's build starts on: the first that answered in preflight (lib/run/run.ts starts from the preferred one; the coordinator for a build here). */
function seedOf(ctx: RunContext, build: SystemBuild): string {
  return ctx.seeds[build.system]!;
}

/** The toplevels into the coordinator's store (when the run is elsewhere), then pinned there. */
async function landAndPin(ctx: RunContext, task: { output?: string | undefined }): Promise<void> {
  const { plan } = deployRun(ctx);
  const coordinator = plan.coordinator.name;
  if (plan.copyToCoordinator) {
    task.output = `copying the toplevels to ${coordinator}`;
    const copy = filled(ctx, plan.copyToCoordinator);
    expectSuccess(`copying the result to ${coordinator} failed`, copy, await ctx.executor.run(copy, { signal: ctx.signal }));
  }
  // Pinned by us too: the post-build hook that should pin them may be missing.
  const { gcRootDir } = plan.preflight;
  const on = plan.coordinator.place.kind === 'local' ? 'local' : sshDestination(plan.coordinator.place.host);
  task.output = `pinning the toplevels in ${gcRootDir} (${on})`;
  for (const planned of plan.pin.commands) {
    const command = filled(ctx, planned);
    const pinned = await ctx.executor.run(command, { signal: ctx.signal });
    expectSuccess(`pinning the toplevels on ${coordinator} failed`, command, pinned, [gcRootHints.missingRoot(gcRootDir)]);
  }
  ctx.pinnedRoots = plan.pin.roots.map((root) => ({ storePath: fillText(root.storePath, ctx.values), root: fillText(root.root, ctx.values), on }));
}

/**
 * Which of `builds` were built where the build may not build: with `on`
 * builders, on another machine than those its --builders named that answered
 * (`on`: the seed alone, or all of them; Nix names a remote build's machine by
 * the URI its --builders entry starts with); built here, on any remote one.
 */
function placement(ctx: RunContext, build: SystemBuild, on: 'seed' | 'builders', builds: readonly BuildRecord[]): { elsewhere: BuildRecord[]; where: string } {
  const answered = new Set((ctx.values[`${on === 'seed' ? 'seed-builder' : 'builders'}:${build.system}`] ?? '').split(' ; '));
  const used = build.builders.filter((b) => answered.has(b.spec));
  const allowed = used.map((b) => b.uri);
  const elsewhere = builds.filter((b) => (build.on === 'here' ? b.machine !== undefined : !allowed.some((uri) => isBuiltOn(b.machine, uri))));
  return { elsewhere, where: build.on === 'here' ? 'this machine' : used.map((b) => `${b.host} (${b.uri})`).join(', ') };
}

/** Throws StageError naming what was built elsewhere ({@link placement}), with how to fix it. */
function expectBuiltWhereAllowed(ctx: RunContext, build: SystemBuild, on: 'seed' | 'builders', builds: readonly BuildRecord[], ignoredBuilders: boolean): void {
  const { elsewhere, where } = placement(ctx, build, on, builds);
  const user = deployRun(ctx).plan.preflight.nixTrust.user;
  if (elsewhere.length) throw new StageError(`built elsewhere than on ${where}: ${describeBuilds(elsewhere)}`, placementHints(ignoredBuilders, elsewhere, user));
}

function describeBuilds(builds: readonly BuildRecord[]): string {
  return builds.map((b) => `${drvName(b.drvPath)} (${b.drvPath}) on ${b.machine ?? 'this machine'}`).join(', ');
}

/**
 * Why Nix may have built somewhere else than on the seed although the
 * command names only the seed in --builders and forbids local builds with
 * --max-jobs 0: a Nix daemon takes max-jobs from any client but ignores
 * --builders from a user not in its trusted-users, and uses its own
 * builders. Daemons from Nix 2.22 (and Lix) say so in the warning the log
 * recorder looks for; Nix 2.4 to 2.21 only at debug level, so without the
 * warning the hint names both causes.
 */
function placementHints(ignoredBuilders: boolean, elsewhere: readonly BuildRecord[], user: string): string[] {
  if (ignoredBuilders) {
    return [`add ${user} to trusted-users in the coordinator's nix.conf (the daemon ignores --builders from untrusted users)`];
  }
  if (elsewhere.length === 0) return [];
  return [
    `Nix did not build on the builder that --builders names, with --max-jobs 0 forbidding local builds: ` +
      `a Nix daemon ignores --builders from users not in its trusted-users (before Nix 2.22 without a warning; ` +
      `nix store info --json tells "trusted"), so add ${user} to trusted-users in the coordinator's nix.conf; ` +
      `otherwise look for what overrides builders or max-jobs (NIX_CONFIG, --option, the machines file)`,
  ];
}

function summarizeBuilds(builds: readonly BuildRecord[]): string {
  const names = builds.map((b) => drvName(b.drvPath));
  const machines = [...new Set(builds.map((b) => b.machine ?? 'this machine'))];
  if (names.length === 0) return 'nothing to build, all in the store already';
  const shown = names.slice(0, 4).join(', ');
  const where = machines.length > 1 ? ` on ${machines.length} machines` : '';
  return `built ${names.length} derivation${names.length > 1 ? 's' : ''}${where} (${shown}${names.length > 4 ? ', …' : ''})`;
}
