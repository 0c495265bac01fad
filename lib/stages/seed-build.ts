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
import { StageError } from '../errors.ts';
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
      // Waiting for the head start's kernel, Nix looks at its lock again every build-poll-interval (1 s,
      // lib/nix/commands.ts): never stopped to be started anew (README "The peers": what that raced).
      return runBuild(ctx, build, { hosts, build: build.build, on: 'builders' }, say, signal, built);
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

/**
 * One `nix build` of a system: what Nix's log says it built where (the
 * report's "built on" comes from there, never from the plan; appended to
 * `built`), checked against where it may build (the builders its
 * --builders named: the seed, or all that answered; or this machine) and
 * against the evaluated toplevels it was asked for.
 */
async function runBuild(
  ctx: RunContext,
  build: SystemBuild,
  /** `on`: the builders its --builders names (the head start: the seed alone) */
  of: { readonly hosts: readonly string[]; readonly build: PlannedCommand; readonly on: 'seed' | 'builders' },
  say: (line: string) => void,
  signal: AbortSignal,
  built: BuildRecord[],
  /** `buildStart`: at the first derivation Nix's log says it began building, and each after */
  on: { readonly buildStart?: () => void } = {},
): Promise<void> {
  const { plan } = deployRun(ctx);
  const log = new BuildLogRecorder();
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
        } else if (event.kind === 'build-stop') return;
        else if (event.kind === 'build-log') say(`${event.drvName}> ${event.line}`);
        else if (!isOutputNoise(event.text)) say(event.text);
      },
    });
    // Nix names a remote build's machine by the URI its --builders entry starts with; a build here has none.
    const answered = new Set((ctx.values[`${of.on === 'seed' ? 'seed-builder' : 'builders'}:${build.system}`] ?? '').split(' ; '));
    const used = build.builders.filter((b) => answered.has(b.spec));
    const allowed = used.map((b) => b.uri);
    const elsewhere = log.builds.filter((b) => (build.on === 'here' ? b.machine !== undefined : !allowed.some((uri) => isBuiltOn(b.machine, uri))));
    // What the log said; if it said nothing (nix did not start), whatever came out that is neither a log record nor noise (the --json result).
    const told = log.failureLines();
    const shown = told.length ? told : tailWithoutNoise(result);
    const hints = placementHints(log, elsewhere, plan.preflight.nixTrust.user);
    expectSuccess(`seed build of ${build.system} on ${whereBuilt(ctx, build)} failed`, command, result, hints, shown);

    if (elsewhere.length) {
      const where = build.on === 'here' ? 'this machine' : used.map((b) => `${b.host} (${b.uri})`).join(', ');
      throw new StageError(`built elsewhere than on ${where}: ${describeBuilds(elsewhere)}`, hints);
    }
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
function placementHints(log: BuildLogRecorder, elsewhere: readonly BuildRecord[], user: string): string[] {
  if (log.ignoredSettings.has('builders')) {
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
