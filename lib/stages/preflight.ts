/** Stage 1: the hosts answer over SSH and the cache answers as a Nix binary cache. */
import type { ListrTask } from 'listr2';
import pLimit from 'p-limit';
import { fetchCacheInfo } from '../cache/client.ts';
import { cacheUnreachableHints } from '../cache/hints.ts';
import { StageError } from '../errors.ts';
import { deployRun, filled, headStartsUnderway, type RunContext, seedAnswered } from './context.ts';
import { describeFailure } from '../exec/describe.ts';
import { outputTail, succeeded } from '../exec/types.ts';
import { DEFAULT_CONCURRENCY } from '../plan/concurrency.ts';
import type { BuilderPlan, DeployPlan, SystemBuild } from '../plan/types.ts';
import { newestLiveRoots, parseRootListing } from '../cache/gc-roots.ts';
import { gcRootHints, isPlaceholderKey } from '../cache/hints.ts';
import { checkCacheKey } from '../cache/key-check.ts';
import { joinBuilderSpecs } from '../nix/commands.ts';
import { describeTool, REBUILD_NOT_FOUND_HINT } from '../nix/nixos-rebuild.ts';
import { probeNixTrust } from '../nix/trust.ts';
import { SSH_FAILED, SUDO_HINT } from '../remote/host.ts';
import { expectSuccess } from './failure.ts';
import { type Subtask, type SubtaskWrapper, subtaskList } from './subtasks.ts';
import { type Deferred, deferred } from '../util/deferred.ts';

const PLACEHOLDER_HINT =
  "Put the cache's public key there: the contents of /var/lib/harmonia/cache-pub-key.pem on the cache host (the same line as in every machine's trusted-public-keys).";

const SSH_HINT = 'Check the address, the key and known_hosts: ssh with the same options must work by hand.';

type TargetCheck = DeployPlan['preflight']['targets'][number];

/** A target answers SSH as its deploy user and, for a non-root one, becomes root with `sudo -n` (as every root step will). */
function targetCheckTask(ctx: RunContext, check: TargetCheck, login: Login) {
  return {
    title: check.local ? `${check.host} (this machine) runs root steps here` : `${check.host} answers SSH as target`,
    run: async () => {
      const command = filled(ctx, check.command);
      const result = await login(() => ctx.executor.run(command, { signal: ctx.signal }));
      // ssh itself fails with 255; any other failure of `sudo -n -- true` is sudo refusing (whatever its wording: sudo, sudo-rs).
      if (check.escalates && !succeeded(result) && !result.aborted && !result.timedOut && result.exitCode !== SSH_FAILED) {
        throw new StageError(describeFailure(`${check.host}: the deploy user cannot become root with sudo -n (no password prompt)`, command, result), [SUDO_HINT]);
      }
      expectSuccess(`${check.host} (target) does not answer SSH`, command, result, [SSH_HINT]);
    },
  };
}

/** A rollback's preflight: every target answers and can become root; nothing is built, so nothing else is asked. */
export function targetsPreflightTask(): ListrTask<RunContext> {
  return {
    title: 'preflight',
    task: (ctx, task) => {
      const login = loginQueue()(() => Promise.resolve());
      return subtaskList(task, ctx.plan.preflight.targets.map((check) => targetCheckTask(ctx, check, login)));
    },
  };
}

/** A deploy's preflight: the seed (or the first builder that answers), the targets, this machine's Nix and nixos-rebuild, the GC roots and the cache. */
export function preflightTask(): ListrTask<RunContext> {
  return {
    title: 'preflight',
    task: (ctx, task) => {
      const { plan } = deployRun(ctx);
      const { preflight, coordinator } = plan;
      // The builders' logins in a queue of their own: after a seed's failover they must not wait behind the targets'.
      const builderQueue = loginQueue();
      const builders: Subtask[] = plan.builds.filter((build) => build.on === 'builders').map((build) => buildersCheckTask(ctx, build, builderQueue));
      const login = loginQueue()(afterHeadStarts(ctx));
      const others: Subtask[] = [
        {
          title: 'Nix on this machine obeys --builders (trusted user)',
          run: async (sub) => {
            const { user, ...commands } = preflight.nixTrust;
            const trust = await probeNixTrust(ctx.executor, preflight.requestTimeoutMs, { signal: ctx.signal, user, commands });
            if (trust.trusted === false) {
              throw new StageError(
                `the Nix daemon does not trust ${trust.user}, so it would ignore --builders and build elsewhere than on the builders it names (${trust.how})`,
                [`Add ${trust.user} to trusted-users in this machine's nix.conf (NixOS: nix.settings.trusted-users), or run the deploy as a user that is.`],
              );
            }
            sub.title = trust.trusted === true ? `Nix trusts ${trust.user} (${trust.how})` : `could not tell whether Nix trusts ${trust.user} (${trust.how}); the seed build checks where things were built`;
          },
        },
        {
          title: `GC roots can be made in ${preflight.gcRootDir} on ${coordinator.name}`,
          run: async () => {
            const command = filled(ctx, preflight.gcRootDirWritable);
            expectSuccess(`cannot pin in ${preflight.gcRootDir} on ${coordinator.name}`, command, await ctx.executor.run(command, { signal: ctx.signal }), [
              gcRootHints.missingRoot(preflight.gcRootDir),
            ]);
          },
        },
        // A build (no rebuild planned) runs no nixos-rebuild.
        ...(preflight.rebuild ? [rebuildCheck(preflight.rebuild)] : []),
        {
          title: `cache signs with cache.publicKey (${preflight.cacheKey.publicKey.split(':')[0]})`,
          run: async (sub) => {
            const { publicKey, listRoots } = preflight.cacheKey;
            if (isPlaceholderKey(publicKey)) throw new StageError(`cache.publicKey is the placeholder shipped in hosts.json (${publicKey})`, [PLACEHOLDER_HINT]);
            const listing = await ctx.executor.run(filled(ctx, listRoots), { signal: ctx.signal });
            // find exits 1 for a missing directory: an answer ("nothing pinned"), not a failure to ask.
            const listed = !listing.timedOut && !listing.aborted && (listing.exitCode === 0 || listing.exitCode === 1);
            const newest = newestLiveRoots(listed ? parseRootListing(listing.stdout) : undefined);
            const check = await checkCacheKey(preflight.cacheUrl, publicKey, newest.map((r) => r.target), preflight.requestTimeoutMs, ctx.signal);
            if (check.kind === 'mismatch') {
              const what = `${check.message} — the cache serves ${check.storePath} with ${check.sigs.map((sig) => `Sig: ${sig}`).join(', ') || 'no signature'}; cache.publicKey is ${publicKey}`;
              if (!plan.waitForCache.allowUnsigned) throw new StageError(what, [check.hint]);
              (ctx.warnings ??= []).push(`${what} — accepted because of --allow-unsigned`);
            }
            const why = !listed ? `could not list the GC roots on ${coordinator.name} (${outputTail(listing, 1)[0] ?? `exit ${listing.exitCode}`})` : check.kind === 'unchecked' ? check.why : '';
            sub.title =
              check.kind === 'verified' ? `cache signs with cache.publicKey (${check.keyName}): checked on ${check.storePath}`
              : check.kind === 'unchecked' ? `cache key not checked before the build: ${why}; the cache wait checks it after`
              : `cache key mismatch ACCEPTED (--allow-unsigned)`;
          },
        },
        {
          title: `cache ${preflight.cacheUrl} answers`,
          run: async (sub) => {
            let storeDir: string;
            let priority: number | undefined;
            try {
              ({ storeDir, priority } = await fetchCacheInfo(preflight.cacheUrl, preflight.requestTimeoutMs, ctx.signal));
            } catch (error) {
              throw new StageError(`cache does not answer: ${(error as Error).message}`, cacheUnreachableHints(preflight.cacheUrl));
            }
            if (storeDir !== '/nix/store') throw new StageError(`cache ${preflight.cacheUrl} serves StoreDir ${storeDir}, not /nix/store`);
            sub.title = `cache ${preflight.cacheUrl} answers (StoreDir ${storeDir}${priority === undefined ? '' : `, priority ${priority}`})`;
          },
        },
      ];
      return subtaskList(task, [...builders, ...preflight.targets.map((check) => targetCheckTask(ctx, check, login)), ...gatedBy(ctx.buildChecked, others)]);
    },
  };
}

/**
 * `checks`, each settling its share of `gate` (ctx.buildChecked): resolved
 * when every check of this machine a build needs has passed, rejected at the
 * first that fails. The head starts (lib/stages/seed-build.ts) wait for it
 * and for their seed ({@link buildersCheckTask}), not for the targets' nor
 * the other builders' logins, which take longest on a large fleet.
 */
function gatedBy(gate: Deferred | undefined, checks: readonly Subtask[]): Subtask[] {
  if (!gate) return [...checks];
  const passed = checks.map(() => deferred());
  void Promise.all(passed.map((d) => d.promise)).then(() => gate.resolve(), (error: unknown) => gate.reject(error));
  return checks.map((check, i) => ({
    ...check,
    run: async (sub: SubtaskWrapper) => {
      try {
        await check.run(sub);
        passed[i]!.resolve();
      } catch (error) {
        passed[i]!.reject(error);
        throw error;
      }
    },
  }));
}

/**
 * A system's builders answer SSH as their builder users: those that do make
 * its build's --builders (`{{builders:<system>}}`), the first of them its seed.
 * The preferred seed is the seed as soon as it answered (`{{seed-builder:<system>}}`,
 * {@link seedAnswered}: its head start need not wait for the others). When it
 * does not answer, the next that does builds instead (said in the report);
 * when none answers, preflight fails with the preferred seed's failure.
 */
function buildersCheckTask(ctx: RunContext, build: SystemBuild, queue: ReturnType<typeof loginQueue>) {
  const names = build.builders.map((b) => b.host);
  const known = seedAnswered(ctx, build.system);
  const choose = (seed: BuilderPlan) => {
    ctx.seeds[build.system] = seed.host;
    ctx.values[`seed-builder:${build.system}`] = seed.spec;
    known.resolve();
  };
  return {
    title: `${names.join(', ')} answer${names.length === 1 ? 's' : ''} SSH as builder${names.length === 1 ? '' : 's'} (${build.system})`,
    run: async (sub: { title: string }) => {
      try {
        await checkBuilders(sub);
      } catch (error) {
        known.reject(error);
        throw error;
      }
    },
  };

  async function checkBuilders(sub: { title: string }): Promise<void> {
    const [first, ...rest] = build.builders;
    const ask = (builder: BuilderPlan) => {
      const command = filled(ctx, builder.check);
      return { builder, command, run: () => ctx.executor.run(command, { signal: ctx.signal }) };
    };
    // The preferred seed's login is not queued: its head start waits for it alone. The others are asked once
    // the head start is underway (they build the other toplevels, later; 5 s at most, so that preflight fails
    // soon when one does not answer), or at once when the seed did not answer.
    const seedProbe = (async () => {
      const probe = ask(first!);
      const result = await probe.run();
      if (succeeded(result)) choose(first!);
      return { ...probe, result };
    })();
    const login = queue(async () => (succeeded((await seedProbe).result) ? atTheLatest(headStartsUnderway(ctx)) : undefined));
    const probes = await Promise.all([
      seedProbe,
      ...rest.map(async (builder) => {
        const probe = ask(builder);
        return { ...probe, result: await login(probe.run) };
      }),
    ]);
    const answering = probes.filter((p) => succeeded(p.result));
    const [preferred] = probes;
    if (answering.length === 0 || ctx.signal.aborted) {
      expectSuccess(`${preferred!.builder.host} (builder) does not answer SSH`, preferred!.command, preferred!.result, [SSH_HINT]);
    }
    const seed = answering[0]!.builder;
    if (seed !== preferred!.builder) choose(seed);
    ctx.values[`builders:${build.system}`] = joinBuilderSpecs(answering.map((p) => p.builder.spec));
    const silent = probes.filter((p) => !succeeded(p.result)).map((p) => `${p.builder.host} (${outputTail(p.result, 1)[0] ?? `exit ${p.result.exitCode}`})`);
    if (seed !== preferred!.builder) {
      const failover = `seed ${preferred!.builder.host} did not answer (${outputTail(preferred!.result, 1)[0] ?? `exit ${preferred!.result.exitCode}`}); ${seed.host} builds instead`;
      ctx.seedFailover = ctx.seedFailover ? `${ctx.seedFailover}; ${failover}` : failover;
    }
    sub.title = silent.length
      ? `${build.system}: ${answering.map((p) => p.builder.host).join(', ')} build${seed === preferred!.builder ? '' : ` (seed ${seed.host})`}; not answering, left out: ${silent.join(', ')}`
      : `${names.join(', ')} answer${names.length === 1 ? 's' : ''} SSH as builder${names.length === 1 ? '' : 's'} (${build.system}, seed ${seed.host})`;
  }
}

/** Runs one ssh login of preflight's when its turn comes ({@link loginQueue}). */
type Login = <T>(login: () => Promise<T>) => Promise<T>;

/**
 * How many ssh logins preflight makes at once besides the preferred seeds'
 * (the run's default concurrency): a large fleet's logins all at once starve
 * this machine's CPU (key exchanges), and the seeds' logins, which the head
 * starts wait for, would wait for all of them.
 */
const LOGINS_AT_ONCE = DEFAULT_CONCURRENCY;

/**
 * The queue for the logins no head start waits for: at most
 * {@link LOGINS_AT_ONCE} at a time, none before `after` has settled
 * (asked once, by the first login that comes, and shared by the others).
 */
function loginQueue(): (after: () => Promise<unknown>) => Login {
  const limit = pLimit(LOGINS_AT_ONCE);
  return (after) => {
    let settled: Promise<unknown> | undefined;
    return async (login) => {
      await (settled ??= after().catch(() => undefined));
      return limit(login);
    };
  };
}

/**
 * When the targets' logins begin: once a deploy's first evaluation has
 * ended and its head starts are underway (or ended), whichever way
 * ({@link headStartsUnderway}), but after {@link LOGINS_HELD_AT_MOST_MS} at
 * the latest: those and the seeds' logins are the run's critical path, yet
 * a large configuration's first evaluation can take a minute, and a target
 * that does not answer should be told sooner. Measured in the lab (2 CPUs,
 * 3 hosts, an evaluation of 1 CPU-second): beside six ssh key exchanges the
 * first evaluation took 2.2 s (1.2 s alone), then the head start's ssh to
 * its seed 1 s more. A run without evaluations (a rollback) logs in at once.
 */
function afterHeadStarts(ctx: RunContext): () => Promise<unknown> {
  return () => atTheLatest(Promise.all([ctx.evaluations?.running[0]?.done, headStartsUnderway(ctx)]));
}

/** Settles when `promise` does, or after {@link LOGINS_HELD_AT_MOST_MS}, whichever comes first. */
function atTheLatest(promise: Promise<unknown>): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, LOGINS_HELD_AT_MOST_MS).unref()));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** How long the targets' and the other builders' logins wait for the head starts at most (ms). */
const LOGINS_HELD_AT_MOST_MS = 5000;

/** The nixos-rebuild the deploy will run here was found and takes the flags the targets need (probed when planning). */
function rebuildCheck(rebuild: NonNullable<DeployPlan['preflight']['rebuild']>) {
  return {
    title: 'nixos-rebuild on this machine',
    run: async (sub: { title: string }) => {
      const { tool, problems } = rebuild;
      if (!tool.found) {
        throw new StageError(`${describeTool(tool)}: ${tool.error}`, [REBUILD_NOT_FOUND_HINT]);
      }
      if (problems.length) throw new StageError(problems.join('\n'), ['`just nix doctor` shows which nixos-rebuild this is and which flags it accepts.']);
      sub.title = `nixos-rebuild on this machine: ${describeTool(tool)}`;
    },
  };
}
