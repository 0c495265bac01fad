/**
 * The peers: what a user of this fleet would run instead of deploy-all, each
 * measured on a fresh generation of the same lab with the same knobs, from
 * hawk (this machine), in a cgroup of its own (bench/cgroup.ts) and with
 * bench/bin/nix first on its PATH (counts each host's evaluations):
 *
 * - document: the fleet document's flow, `nixos-rebuild switch --fast --flake
 *   <ref>#<host> --target-host deploy@<addr> --use-remote-sudo` (hawk's
 *   bash-era stand-in) one host after another, the seed first. `--fast`: from
 *   x86_64 to aarch64 the bash nixos-rebuild cannot re-exec the target's own.
 * - parallel: the same command for every host at once.
 * - colmena: colmena's way — every toplevel evaluated and built in one `nix
 *   build` (hawk's Nix, the lab's builders), then per host, at most 10 at
 *   once, its closure pushed from hawk (`nix copy --to ssh://…`, no
 *   substitution on the target) and activated over ssh with sudo
 *   (`nix-env -p <profile> --set`, `switch-to-configuration switch`).
 * - deploy-all: scripts/deploy-all.ts (bench/measure.ts measureStaged).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pLimit from 'p-limit';
import type { CommandResult, CommandSpec } from '../lib/exec/types.ts';
import { loadInventory } from '../lib/inventory/load.ts';
import type { Inventory } from '../lib/inventory/schema.ts';
import { parseBuildResults } from '../lib/nix/build-log.ts';
import { copyToArgv, installable, sshEnv, toplevelAttribute } from '../lib/nix/commands.ts';
import { targetHost } from '../lib/remote/fleet.ts';
import { remoteArgv, targetHostArg } from '../lib/remote/host.ts';
import { median } from './analysis.ts';
import { type CoordinatorUsage, StrategyCgroup } from './cgroup.ts';
import { BenchError, Interrupted, must } from './lab.ts';
import { type Check, type Context, measureStaged, type StagedResult } from './measure.ts';

export const STRATEGIES = ['document', 'parallel', 'colmena', 'deploy-all'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export const STRATEGY_TITLES: Readonly<Record<Strategy, string>> = {
  document: "the document's flow (nixos-rebuild --target-host, one host after another, the seed first)",
  parallel: 'plain nixos-rebuild --target-host for every host at once',
  colmena: "colmena's way (one nix build of every toplevel, push each closure from hawk, activate; 10 at once)",
  'deploy-all': 'deploy-all',
};

/** colmena's default parallelism (`--parallel 10`) */
export const COLMENA_PARALLEL = 10;

export interface Evaluations {
  /** lab-eval markers of this generation (bench/bin/nix) */
  readonly total: number;
  readonly perHost: Readonly<Record<string, number>>;
  readonly min: number;
  readonly max: number;
  /** by the nix command that evaluated (bench/bin/nix: `nix-eval`, `nix-build`, …) */
  readonly byCommand: Readonly<Record<string, number>>;
}

export interface PeerRun {
  readonly strategy: Strategy;
  /** which round of the point's strategies it ran in, from 1 (absent in results written before rounds) */
  readonly round?: number;
  readonly generation: string;
  readonly hosts: number;
  /** from the first command's start to the last one's end, ms */
  readonly wallMs: number;
  readonly ok: boolean;
  readonly error?: string;
  /** where this generation's kernel was built (builds.log), once per build */
  readonly kernelBuiltOn: readonly string[];
  readonly toplevelBuilds: number;
  readonly evaluations: Evaluations;
  /** the strategy's own processes on hawk (its cgroup) */
  readonly coordinator: CoordinatorUsage | undefined;
  /** where the time went: spans from the strategy's start, ms */
  readonly phases: readonly { name: string; startMs: number; ms: number }[];
  /** each host from its first command to its last, ms from the strategy's start */
  readonly hostTimes: readonly { host: string; startMs: number; ms: number }[];
  /** after a failure: each host's failed systemd units (what made a health check see `degraded`) */
  readonly failedUnits?: Readonly<Record<string, readonly string[]>>;
  /** deploy-all's own measurement (report, overhead, checks) */
  readonly staged?: StagedResult;
  readonly checks: readonly Check[];
}

export interface PeersPoint {
  readonly hosts: number;
  readonly labUpMs: number;
  /** each container's memory after boot (up.sh), MiB */
  readonly containerMemoryMiB: Readonly<Record<string, number>>;
  /** every strategy once per round, the rounds one after another (absent in results written before rounds: 1) */
  readonly rounds?: number;
  /** every run, in the order they ran: with rounds, each strategy `rounds` times ({@link medianRuns} picks one each) */
  readonly runs: PeerRun[];
}

/**
 * Each strategy's median run of a point, in the strategies' order: the run
 * whose wall time is the middle one of its rounds (the lower middle for an
 * even number). One run's noise on this machine — a remote build's end
 * reported 1.5 s late was seen — is as large as the strategies' differences
 * at 3 hosts: they are compared by their medians.
 */
export function medianRuns(point: Pick<PeersPoint, 'runs'>): PeerRun[] {
  const byStrategy = new Map<Strategy, PeerRun[]>();
  for (const run of point.runs) byStrategy.set(run.strategy, [...(byStrategy.get(run.strategy) ?? []), run]);
  return [...byStrategy.values()].map((all) => {
    // A failed run's wall is its time to the failure: among the runs that succeeded, if any did.
    const ok = all.filter((run) => run.ok);
    const runs = ok.length ? ok : all;
    return [...runs].sort((a, b) => a.wallMs - b.wallMs)[Math.floor((runs.length - 1) / 2)]!;
  });
}

/** How many rounds of the strategies a point of `hosts` hosts runs unless --peer-rounds says: {@link CLOSE_ROUNDS} up to {@link CLOSE_UP_TO_HOSTS} hosts, else 1. */
export function defaultPeerRounds(hosts: number): number {
  return hosts <= CLOSE_UP_TO_HOSTS ? CLOSE_ROUNDS : 1;
}

/** Where deploy-all and a peer end within a run's noise of each other (~1 s apart at 3 hosts; deploy-all 8 s and more ahead from 10 hosts on, where one round takes 4–7 min). */
const CLOSE_UP_TO_HOSTS = 3;
/** The fewest rounds with a median that one slow run cannot move. */
const CLOSE_ROUNDS = 3;

/** What every strategy's commands get: hawk's environment, bench/bin/nix first, the evaluation log. */
interface Harness {
  readonly env: Record<string, string>;
  readonly cgroup: StrategyCgroup;
  readonly t0: number;
  run(what: string, spec: CommandSpec): Promise<CommandResult>;
}

/** The lab flake's toplevel name (test/lab/flake.sh): nixos-system-<host>-25.05.lab-<generation>. */
function toplevelSuffix(host: string, generation: string): string {
  return `-nixos-system-${host}-25.05.lab-${generation}`;
}

/** `lab-eval <host> <generation>` lines of one generation, counted per host. */
export function countEvaluations(lines: readonly string[], hosts: readonly string[], generation: string): Evaluations {
  const perHost: Record<string, number> = Object.fromEntries(hosts.map((h) => [h, 0]));
  const byCommand: Record<string, number> = {};
  let total = 0;
  for (const line of lines) {
    const [marker, host, gen, command = 'unknown'] = line.trim().split(' ');
    if (marker !== 'lab-eval' || gen !== generation || host === undefined) continue;
    perHost[host] = (perHost[host] ?? 0) + 1;
    byCommand[command] = (byCommand[command] ?? 0) + 1;
    total++;
  }
  const counts = hosts.map((h) => perHost[h] ?? 0);
  return { total, perHost, min: Math.min(...counts), max: Math.max(...counts), byCommand };
}

/** The seed first (the inventory's), then the other hosts in the lab's order. */
function seedFirst(inventory: Inventory, hosts: readonly string[]): string[] {
  const seed = inventory.seed && hosts.includes(inventory.seed) ? inventory.seed : hosts[0]!;
  return [seed, ...hosts.filter((h) => h !== seed)];
}

/** The command a user types for one host: nixos-rebuild from PATH (hawk's bash-era stand-in). */
function rebuildSpec(inventory: Inventory, flake: string, host: string, timeoutMs: number): CommandSpec {
  const target = targetHost(inventory, host);
  return {
    argv: ['nixos-rebuild', 'switch', '--fast', '--flake', `${flake}#${host}`, '--target-host', targetHostArg(target), '--use-remote-sudo'],
    env: sshEnv(target),
    timeoutMs,
  };
}

/**
 * One strategy on a fresh generation: a cgroup, the evaluation log, the
 * strategy's commands, then what builds.log, the log and the hosts say.
 */
async function measureOne(
  ctx: Context,
  strategy: Strategy,
  generation: string,
  realNix: string,
  /** how its progress lines and checks are named: `peers <n>`, and the round when there are several */
  where: string,
  body: (h: Harness, inventory: Inventory, flake: string) => Promise<Pick<PeerRun, 'phases' | 'hostTimes'> & { staged?: StagedResult }>,
): Promise<PeerRun> {
  const { lab, executor, signal } = ctx;
  await lab.generation(generation);
  const inventory = await loadInventory(lab.inventoryPath);
  const flake = `path:${join(lab.dir, 'flake')}`;
  const evalLog = join(lab.dir, `bench-evaluations-${strategy}.log`);
  writeFileSync(evalLog, '');
  const buildsBefore = lab.builds().length;
  const cgroup = StrategyCgroup.create(strategy);
  const env = {
    ...lab.env,
    PATH: `${join(ctx.repoRoot, 'bench/bin')}:${lab.env.PATH}`,
    BENCH_REAL_NIX: realNix,
    BENCH_EVAL_LOG: evalLog,
  };
  const t0 = Date.now();
  let lastEnd = t0;
  const harness: Harness = {
    env,
    cgroup,
    t0,
    run: async (what, spec) => {
      const result = await must(executor, `${strategy}: ${what}`, { ...spec, argv: cgroup.wrap(spec.argv), env: { ...env, ...spec.env } }, { signal });
      lastEnd = Math.max(lastEnd, result.startedAt + result.durationMs);
      return result;
    },
  };
  ctx.progress(`${where}: ${strategy}`);
  let outcome: Awaited<ReturnType<typeof body>> | undefined;
  let error: string | undefined;
  let coordinator: CoordinatorUsage | undefined;
  try {
    outcome = await body(harness, inventory, flake);
    if (outcome.staged) lastEnd = Math.max(lastEnd, t0 + outcome.staged.wallMs);
  } catch (e) {
    if (e instanceof Interrupted || signal.aborted) throw e;
    error = e instanceof BenchError ? e.message : String(e);
    ctx.progress(`${where}: ${strategy} failed: ${error.split('\n')[0]}`);
  } finally {
    try {
      coordinator = cgroup.usage();
    } finally {
      await cgroup.remove();
    }
  }
  const newBuilds = lab.builds().slice(buildsBefore);
  const evaluations = countEvaluations(readFileSync(evalLog, 'utf8').split('\n'), lab.hosts, generation);
  rmSync(evalLog, { force: true });
  const wrong = lab.hosts.filter((h) => !(lab.currentSystem(h) ?? '').endsWith(toplevelSuffix(h, generation)));
  const succeeded = error === undefined && (outcome?.staged ? outcome.staged.exitCode === 0 : true);
  const failedUnits: Record<string, string[]> = {};
  if (!succeeded) {
    for (const host of lab.hosts) {
      const units = await lab.failedUnits(host);
      if (units.length) failedUnits[host] = units;
    }
    if (Object.keys(failedUnits).length) ctx.progress(`${where}: ${strategy}: failed units: ${Object.entries(failedUnits).map(([h, u]) => `${h}: ${u.join('; ')}`).join(' | ').slice(0, 600)}`);
  }
  const checks: Check[] = [
    { name: `${where}: ${strategy} succeeded`, ok: error === undefined, detail: error?.split('\n')[0] ?? 'every command exited 0' },
    {
      name: `${where}: ${strategy}: every host runs generation ${generation}`,
      ok: wrong.length === 0,
      detail: wrong.length ? `not on the new system: ${wrong.join(', ')}` : 'current-system is the new toplevel on every host',
    },
    ...(outcome?.staged?.checks ?? []),
  ];
  return {
    strategy,
    generation,
    hosts: lab.hosts.length,
    wallMs: (outcome?.staged ? outcome.staged.wallMs : lastEnd - t0),
    ok: checks.every((c) => c.ok),
    ...(error === undefined ? {} : { error }),
    ...(Object.keys(failedUnits).length ? { failedUnits } : {}),
    kernelBuiltOn: newBuilds.filter((b) => b.generation === generation && b.name.startsWith('linux-')).map((b) => b.host),
    toplevelBuilds: newBuilds.filter((b) => b.generation === generation && b.name.startsWith('nixos-system-')).length,
    evaluations,
    coordinator,
    phases: outcome?.phases ?? [],
    hostTimes: outcome?.hostTimes ?? [],
    ...(outcome?.staged ? { staged: outcome.staged } : {}),
    checks,
  };
}

function span(h: Harness, name: string, r: CommandResult) {
  return { name, startMs: r.startedAt - h.t0, ms: r.durationMs };
}

/** A bound on one host's nixos-rebuild or push+activate at these knobs, ms. */
function perHostBudgetMs(ctx: Context): number {
  const k = ctx.lab.knobs!;
  return (k.kernelSeconds + k.hostSeconds + k.activationSeconds + 2 * k.evalSeconds + 180) * 1000 * Math.max(1, Math.ceil(ctx.lab.hosts.length / 10));
}

/** The document's flow: one nixos-rebuild after another, the seed first. */
async function documentFlow(ctx: Context, generation: string, realNix: string, where: string): Promise<PeerRun> {
  return measureOne(ctx, 'document', generation, realNix, where, async (h, inventory, flake) => {
    const hostTimes = [];
    for (const host of seedFirst(inventory, ctx.lab.hosts)) {
      const r = await h.run(`nixos-rebuild ${host}`, rebuildSpec(inventory, flake, host, perHostBudgetMs(ctx)));
      hostTimes.push({ host, startMs: r.startedAt - h.t0, ms: r.durationMs });
    }
    const [seed, ...rest] = hostTimes;
    return {
      hostTimes,
      phases: [
        { name: `seed ${seed!.host} (builds the kernel)`, startMs: seed!.startMs, ms: seed!.ms },
        ...(rest.length ? [{ name: `the other ${rest.length}, one after another (median ${((median(rest.map((r) => r.ms)) ?? 0) / 1000).toFixed(2)} s each)`, startMs: rest[0]!.startMs, ms: rest.reduce((a, r) => a + r.ms, 0) }] : []),
      ],
    };
  });
}

/** Every host's nixos-rebuild at once. */
async function parallelRebuilds(ctx: Context, generation: string, realNix: string, where: string): Promise<PeerRun> {
  return measureOne(ctx, 'parallel', generation, realNix, where, async (h, inventory, flake) => {
    const results = await Promise.allSettled(ctx.lab.hosts.map((host) => h.run(`nixos-rebuild ${host}`, rebuildSpec(inventory, flake, host, perHostBudgetMs(ctx)))));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const hostTimes = results.map((r, i) => {
      const v = (r as PromiseFulfilledResult<CommandResult>).value;
      return { host: ctx.lab.hosts[i]!, startMs: v.startedAt - h.t0, ms: v.durationMs };
    });
    const ms = hostTimes.map((t) => t.ms);
    return {
      hostTimes,
      phases: [{ name: `${hostTimes.length} nixos-rebuilds at once (fastest ${(Math.min(...ms) / 1000).toFixed(2)} s, median ${((median(ms) ?? 0) / 1000).toFixed(2)} s, slowest ${(Math.max(...ms) / 1000).toFixed(2)} s)`, startMs: 0, ms: Math.max(...hostTimes.map((t) => t.startMs + t.ms)) }],
    };
  });
}

/** colmena's way: build all, then push and activate each host, 10 at once. */
async function colmenaWay(ctx: Context, generation: string, realNix: string, where: string): Promise<PeerRun> {
  return measureOne(ctx, 'colmena', generation, realNix, where, async (h, inventory, flake) => {
    const hosts = ctx.lab.hosts;
    const build = await h.run('nix build of every toplevel', {
      argv: ['nix', 'build', '--no-link', '--json', ...hosts.map((host) => installable(flake, toplevelAttribute(inventory, host)))],
      timeoutMs: perHostBudgetMs(ctx) + hosts.length * (ctx.lab.knobs!.evalSeconds + ctx.lab.knobs!.hostSeconds) * 1000,
    });
    // By name, never by position (lab-facts): the toplevel's name carries its host.
    const outputs = parseBuildResults(build.stdout);
    const toplevelOf = (host: string) => {
      const out = outputs.find((o) => o.drvPath.endsWith(`${toplevelSuffix(host, generation)}.drv`))?.outputs.out;
      if (!out) throw new BenchError(`colmena: nix build printed no toplevel for ${host}`);
      return out;
    };
    const limit = pLimit(COLMENA_PARALLEL);
    const perHost = await Promise.all(
      hosts.map((host) =>
        limit(async () => {
          const target = targetHost(inventory, host);
          const toplevel = toplevelOf(host);
          const timeoutMs = perHostBudgetMs(ctx);
          const copy = await h.run(`push to ${host}`, { argv: copyToArgv(target, [toplevel]), env: sshEnv(target), timeoutMs });
          const profile = await h.run(`profile of ${host}`, { argv: remoteArgv(target, ['nix-env', '-p', '/nix/var/nix/profiles/system', '--set', toplevel], { asRoot: true }), timeoutMs });
          const activate = await h.run(`activate ${host}`, { argv: remoteArgv(target, [`${toplevel}/bin/switch-to-configuration`, 'switch'], { asRoot: true }), timeoutMs });
          return { host, copy, profile, activate };
        }),
      ),
    );
    const sum = (pick: (p: (typeof perHost)[number]) => CommandResult) => perHost.reduce((a, p) => a + pick(p).durationMs, 0);
    const first = Math.min(...perHost.map((p) => p.copy.startedAt)) - h.t0;
    const last = Math.max(...perHost.map((p) => p.activate.startedAt + p.activate.durationMs)) - h.t0;
    return {
      hostTimes: perHost.map((p) => ({ host: p.host, startMs: p.copy.startedAt - h.t0, ms: p.activate.startedAt + p.activate.durationMs - p.copy.startedAt })),
      phases: [
        span(h, 'evaluate and build every toplevel (one nix build)', build),
        {
          name: `push + activate, ${COLMENA_PARALLEL} at once (summed over hosts: push ${(sum((p) => p.copy) / 1000).toFixed(1)} s, profile ${(sum((p) => p.profile) / 1000).toFixed(1)} s, activate ${(sum((p) => p.activate) / 1000).toFixed(1)} s)`,
          startMs: first,
          ms: last - first,
        },
      ],
    };
  });
}

/** deploy-all, in its cgroup, with the evaluation counter. */
async function deployAll(ctx: Context, generation: string, realNix: string, where: string, concurrency: number | undefined): Promise<PeerRun> {
  return measureOne(ctx, 'deploy-all', generation, realNix, where, async (h) => {
    // measureOne wrote the generation already: deploy-all deploys it as is.
    const staged = await measureStaged(ctx, {
      generation,
      newGeneration: false,
      expectBuilds: true,
      concurrency,
      label: `${where}: deploy-all`,
      wrap: (argv) => h.cgroup.wrap(argv),
      env: h.env,
    });
    return {
      staged,
      hostTimes: staged.report.hosts.filter((x) => x.durationMs !== undefined).map((x) => ({ host: x.name, startMs: x.startMs ?? 0, ms: x.durationMs! })),
      phases: [
        { name: 'start-up (before its clock)', startMs: 0, ms: staged.overhead.startupMs },
        ...staged.report.stages.filter((st) => st.durationMs !== undefined).map((st) => ({ name: st.name, startMs: staged.overhead.startupMs + (st.startMs ?? 0), ms: st.durationMs! })),
      ],
    };
  });
}

/** The real `nix` bench/bin/nix runs (the first on hawk's PATH). */
export async function realNixPath(ctx: Context): Promise<string> {
  const r = await must(ctx.executor, 'finding nix', { argv: ['sh', '-c', 'command -v nix'], env: { PATH: ctx.lab.env.PATH ?? '' }, timeoutMs: 10_000 });
  const path = r.stdout.trim();
  if (!path.startsWith('/')) throw new BenchError(`no nix on hawk's PATH (${r.stdout.trim()})`);
  return path;
}

/**
 * The four strategies on the lab that is up, each on its own fresh
 * generation, `rounds` times over (each round every strategy once, in the
 * same order: interleaved, so a slow spell of the machine hits them alike).
 */
export async function measurePeers(ctx: Context, options: { generation: (what: string) => string; labUpMs: number; concurrency: number | undefined; strategies?: readonly Strategy[]; rounds: number }): Promise<PeersPoint> {
  const realNix = await realNixPath(ctx);
  const n = ctx.lab.hosts.length;
  const point: PeersPoint = { hosts: n, labUpMs: options.labUpMs, containerMemoryMiB: ctx.lab.upMemoryMiB, rounds: options.rounds, runs: [] };
  for (let round = 1; round <= options.rounds; round++) {
    for (const strategy of options.strategies ?? STRATEGIES) point.runs.push(await measurePeer(ctx, strategy, { ...options, realNix, round }));
  }
  return point;
}

async function measurePeer(ctx: Context, strategy: Strategy, options: { generation: (what: string) => string; concurrency: number | undefined; realNix: string; round: number; rounds: number }): Promise<PeerRun> {
  const { realNix, round, rounds } = options;
  const n = ctx.lab.hosts.length;
  const generation = options.generation(`p${n}${strategy.replace('-', '').slice(0, 3)}${round > 1 ? round : ''}`);
  const where = `peers ${n}${rounds > 1 ? ` (round ${round} of ${rounds})` : ''}`;
  const run =
    strategy === 'document'
      ? await documentFlow(ctx, generation, realNix, where)
      : strategy === 'parallel'
        ? await parallelRebuilds(ctx, generation, realNix, where)
        : strategy === 'colmena'
          ? await colmenaWay(ctx, generation, realNix, where)
          : await deployAll(ctx, generation, realNix, where, options.concurrency);
  ctx.progress(
    `${where}: ${strategy} ${(run.wallMs / 1000).toFixed(1)} s, kernel ${run.kernelBuiltOn.length}×, evaluations per host ${run.evaluations.min}–${run.evaluations.max}` +
      (run.coordinator ? `, coordinator CPU ${(run.coordinator.cpuMs / 1000).toFixed(1)} s, peak ${((run.coordinator.peakMemoryBytes ?? 0) / 2 ** 20).toFixed(0)} MiB` : ''),
  );
  return { ...run, round };
}
