/**
 * The measurements, each on a lab that is up: the sequential baseline, a
 * staged deploy-all, a no-op re-run, and a dissection of where a staged run's
 * time goes inside its commands (seed build events, one nixos-rebuild's
 * phases, SSH connection costs).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Executor } from '../lib/exec/types.ts';
import { loadInventory } from '../lib/inventory/load.ts';
import { resolveSelection } from '../lib/inventory/select.ts';
import { parseBuildResults } from '../lib/nix/build-log.ts';
import { joinBuilderSpecs, toplevelAttribute } from '../lib/nix/commands.ts';
import { fillCommand, toplevelDerivationValues } from '../lib/plan/placeholders.ts';
import { probeNixVersion } from '../lib/nix/version.ts';
import { parseEvaluation } from '../lib/stages/evaluate.ts';
import { planDeploy } from '../lib/plan/assemble.ts';
import { builderHost, targetHost } from '../lib/remote/fleet.ts';
import { remoteArgv, sshDestination, sshOptionArgs } from '../lib/remote/host.ts';
import { analyseOverhead, asDeployReport, compactCommands, type DeployReport, median, type OverheadAnalysis, overlapLength } from './analysis.ts';
import { BenchError, hostAddress, Interrupted, kernelSystem, type Lab, must, X86_TARGET } from './lab.ts';

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface Context {
  readonly executor: Executor;
  readonly lab: Lab;
  readonly repoRoot: string;
  readonly signal: AbortSignal;
  readonly progress: (text: string) => void;
}

function check(name: string, ok: boolean, detail: string): Check {
  return { name, ok, detail };
}

function sameHosts(actual: readonly string[], expected: readonly string[]): boolean {
  return actual.length === expected.length && [...actual].sort().join(' ') === [...expected].sort().join(' ');
}

// --- sequential baseline -------------------------------------------------------

export interface SequentialResult {
  readonly generation: string;
  readonly totalMs: number;
  readonly hosts: readonly { host: string; buildMs: number; profileMs: number; activateMs: number; totalMs: number; toplevel: string }[];
  readonly kernelBuiltOn: readonly string[];
  readonly checks: readonly Check[];
}

/**
 * What people did before: on each opi in turn, build its own system with no
 * substituter (so nothing is shared), set the system profile, activate.
 */
export async function measureSequential(ctx: Context, generation: string): Promise<SequentialResult> {
  const { lab, executor, signal } = ctx;
  await lab.generation(generation);
  const inventory = await loadInventory(lab.inventoryPath);
  const flake = lab.sharedFlake(generation);
  const budgetMs = (lab.knobs!.kernelSeconds + lab.knobs!.hostSeconds + 120) * 1000;
  const hosts: SequentialResult['hosts'][number][] = [];
  const started = Date.now();
  for (const host of lab.hosts) {
    const target = targetHost(inventory, host);
    const installable = `${flake}#${toplevelAttribute(inventory, host)}`;
    ctx.progress(`sequential: ${host}: nix build on ${host} (no substituters), set profile, switch`);
    const build = await must(
      executor,
      `sequential: building ${host} on ${host}`,
      { argv: remoteArgv(target, ['nix', 'build', '--no-link', '--json', '--option', 'substituters', '', installable]), timeoutMs: budgetMs },
      { signal },
    );
    const toplevel = parseBuildResults(build.stdout)[0]?.outputs.out;
    if (!toplevel) throw new BenchError(`sequential: nix build on ${host} printed no output path: ${build.stdout.slice(0, 300)}`);
    const profile = await must(
      executor,
      `sequential: setting ${host}'s system profile`,
      // The targets' deploy user is not root: the system profile and the activation need sudo -n, as a deploy's do.
      { argv: remoteArgv(target, ['nix-env', '-p', '/nix/var/nix/profiles/system', '--set', toplevel], { asRoot: true }), timeoutMs: 60_000 },
      { signal },
    );
    const activate = await must(
      executor,
      `sequential: activating ${host}`,
      { argv: remoteArgv(target, [`${toplevel}/bin/switch-to-configuration`, 'switch'], { asRoot: true }), timeoutMs: (lab.knobs!.activationSeconds + 60) * 1000 },
      { signal },
    );
    hosts.push({
      host,
      buildMs: build.durationMs,
      profileMs: profile.durationMs,
      activateMs: activate.durationMs,
      totalMs: activate.startedAt + activate.durationMs - build.startedAt,
      toplevel,
    });
  }
  const totalMs = Date.now() - started;
  const kernelBuiltOn = lab.kernelBuilds(generation);
  return {
    generation,
    totalMs,
    hosts,
    kernelBuiltOn,
    checks: [
      check(
        'sequential: the kernel was built once on every opi',
        sameHosts(kernelBuiltOn, lab.hosts),
        `builds.log: generation ${generation}'s kernel built ${kernelBuiltOn.length}× (on ${kernelBuiltOn.join(', ') || 'nothing'}); expected once on each of ${lab.hosts.join(', ')}`,
      ),
      ...hosts.map((h) =>
        check(`sequential: ${h.host} runs its new system`, lab.currentSystem(h.host) === h.toplevel, `current-system → ${lab.currentSystem(h.host) ?? 'nothing'}`),
      ),
    ],
  };
}

// --- staged (deploy-all) ---------------------------------------------------------

/** One Nix system's seed build in a deploy-all run: its span (the run report) and its kernel and toplevel builds (builds.log). */
export interface SystemResult {
  readonly system: string;
  /** on the system's builders (the seed first), or here, on the coordinator */
  readonly on: 'builders' | 'here';
  /** the preferred builder, or the coordinator for `here` */
  readonly seed: string;
  readonly hosts: readonly string[];
  readonly outcome: string;
  /** derivations Nix built (the report's count) */
  readonly derivations: number | undefined;
  /** the seed build's `nix build`, ms from the run's start (report.systemBuilds) */
  readonly buildStartMs: number | undefined;
  readonly buildMs: number | undefined;
  /** this generation's kernel builds of this system: where, and when in ms from the run's start */
  readonly kernels: readonly { name: string; host: string; startMs: number; ms: number }[];
  /** where each of its hosts' toplevels was built, by host (a host appears once per build) */
  readonly toplevels: readonly { host: string; builtOn: string }[];
}

export interface StagedResult {
  readonly generation: string;
  readonly hosts: number;
  readonly concurrency: number | undefined;
  readonly exitCode: number | null;
  readonly outcome: string;
  /** the deploy-all process from spawn to exit (what a user waits for) */
  readonly wallMs: number;
  readonly overhead: OverheadAnalysis;
  readonly kernelBuiltOn: readonly string[];
  readonly toplevelBuilds: number;
  /** each Nix system's seed build (one per system in the run) */
  readonly systems: readonly SystemResult[];
  /** requests to the cache per client during this run (hawk polls it, the targets fetch from it) */
  readonly cacheRequests: Readonly<Record<string, { narinfo: number; nar: number }>>;
  /** deploy-all's report; with argv replaced by labels unless `fullCommands` */
  readonly report: DeployReport | CompactReport;
  readonly checks: readonly Check[];
}

export type CompactReport = Omit<DeployReport, 'commands'> & { readonly commands: ReturnType<typeof compactCommands> };

/**
 * Each system's seed build of a run, from its report's systemBuilds and the
 * generation's builds in builds.log (their epoch seconds put on the run's time
 * axis, report.startedAt, ms).
 */
function systemResults(lab: Lab, report: DeployReport, generation: string): SystemResult[] {
  const runStart = Date.parse(report.startedAt);
  const records = lab.builds().filter((b) => b.generation === generation);
  return (report.systemBuilds ?? []).map((b) => ({
    system: b.system,
    on: b.on,
    seed: b.seed,
    hosts: b.hosts,
    outcome: b.outcome,
    derivations: b.derivations,
    buildStartMs: b.startMs,
    buildMs: b.durationMs,
    kernels: records
      .filter((r) => r.name.startsWith('linux-') && kernelSystem(r.name) === b.system)
      .map((r) => ({ name: r.name, host: r.host, startMs: r.start * 1000 - runStart, ms: (r.end - r.start) * 1000 })),
    // flake.sh names a toplevel nixos-system-<host>-<version>.
    toplevels: b.hosts.flatMap((host) => records.filter((r) => r.name.startsWith(`nixos-system-${host}-`)).map((r) => ({ host, builtOn: r.host }))),
  }));
}

/** A fresh generation's builds: per system, the kernel once on its seed, each toplevel once on the system's builders (or here). */
function buildChecks(label: string, systems: readonly SystemResult[], targets: readonly string[], builders: readonly string[]): Check[] {
  if (!systems.length) return [check(`${label}: the report has each system's seed build`, false, 'no systemBuilds in the run report')];
  const checks: Check[] = [];
  for (const sys of systems) {
    const kernel = systems.length > 1 ? `${sys.system}'s kernel` : 'the kernel';
    const where = sys.on === 'here' ? `here (${sys.seed})` : `on the seed ${sys.seed}`;
    checks.push(
      check(
        `${label}: ${kernel} was built once, ${where}`,
        sys.kernels.length === 1 && sys.kernels[0]!.host === sys.seed,
        `builds.log: built ${sys.kernels.length}× (on ${sys.kernels.map((k) => k.host).join(', ') || 'nothing'})`,
      ),
    );
    // Nix places the toplevels across all the builders it was given (the seed first), once each.
    const allowed = sys.on === 'here' ? [sys.seed] : builders;
    const hosts = sys.toplevels.map((t) => t.host);
    checks.push(
      check(
        `${label}: each ${systems.length > 1 ? `${sys.system} ` : ''}toplevel was built once, ${sys.on === 'here' ? where : 'on the builders'}`,
        sameHosts(hosts, sys.hosts) && sys.toplevels.every((t) => allowed.includes(t.builtOn)),
        `${sys.toplevels.length} toplevel builds for ${sys.hosts.length} hosts: ${sys.toplevels.map((t) => `${t.host} on ${t.builtOn}`).join(', ') || 'none'}`,
      ),
    );
  }
  const unbuilt = targets.filter((t) => !systems.some((sys) => sys.hosts.includes(t)));
  if (unbuilt.length) checks.push(check(`${label}: every host's system had a seed build`, false, `no seed build for ${unbuilt.join(', ')}`));
  return checks;
}

/**
 * `tsx scripts/deploy-all.ts --inventory <lab> --json`. `newGeneration: false`
 * for a re-run of a generation that is already deployed (nothing may build).
 */
export async function measureStaged(
  ctx: Context,
  options: {
    generation: string;
    newGeneration: boolean;
    concurrency?: number | undefined;
    label: string;
    /** another inventory (e.g. with ssh multiplexing); default the lab's */
    inventoryPath?: string;
    /** keep every command's argv in the stored report (else labels) */
    fullCommands?: boolean;
    /** the inventory's targets (default the lab's opis) */
    targets?: readonly string[];
    /** the inventory's hosts left out (--exclude) */
    exclude?: readonly string[];
    /** the generation is new although written already (by the caller): check its builds as a new one's */
    expectBuilds?: boolean;
    /** runs deploy-all inside this (bench/peers.ts: its cgroup), with this environment added */
    wrap?: (argv: readonly string[]) => string[];
    env?: Readonly<Record<string, string>>;
  },
): Promise<StagedResult> {
  const { lab, executor, signal } = ctx;
  const targets = options.targets ?? lab.hosts;
  if (options.newGeneration) await lab.generation(options.generation);
  const buildsBefore = lab.builds().length;
  const requestsBefore = lab.cacheRequests().length;
  const argv = [
    join(ctx.repoRoot, 'node_modules/.bin/tsx'),
    join(ctx.repoRoot, 'scripts/deploy-all.ts'),
    '--inventory', options.inventoryPath ?? lab.inventoryPath,
    '--json',
    // Lab runs stay in the lab (down.sh removes them): they must not enter the
    // user's .deploy history, whose medians would then mix lab seconds with real minutes.
    '--report-dir', join(lab.dir, 'runs'),
    ...(options.concurrency === undefined ? [] : ['--concurrency', String(options.concurrency)]),
    ...(options.exclude ?? []).flatMap((host) => ['--exclude', host]),
  ];
  ctx.progress(`${options.label}: deploy-all on ${targets.length} hosts`);
  const knobs = lab.knobs!;
  const result = await executor.run(
    {
      argv: options.wrap ? options.wrap(argv) : argv,
      env: { ...lab.env, CI: 'true', ...options.env },
      timeoutMs: (knobs.kernelSeconds + (knobs.hostSeconds + 3 * knobs.evalSeconds) * targets.length + 300) * 1000,
    },
    { signal },
  );
  if (result.aborted || signal.aborted) throw new Interrupted();
  let parsed: { outcome?: string; exitCode?: number; report?: unknown; error?: { message?: string } };
  try {
    parsed = JSON.parse(result.stdout) as typeof parsed;
  } catch {
    throw new BenchError(`${options.label}: deploy-all printed no JSON (exit ${result.exitCode}):\n${result.stdout.slice(-1500)}\n${result.stderr.slice(-1500)}`);
  }
  if (!parsed.report) throw new BenchError(`${options.label}: deploy-all failed before running (exit ${result.exitCode}): ${parsed.error?.message ?? result.stderr.slice(-800)}`);
  const report = asDeployReport(parsed.report);
  const overhead = analyseOverhead(report, { start: result.startedAt, end: result.startedAt + result.durationMs });

  const kernelBuiltOn = lab.kernelBuilds(options.generation);
  const toplevels = lab.toplevelBuilds(options.generation);
  const newBuilds = lab.builds().slice(buildsBefore);
  const byAddress = new Map(targets.map((h) => [hostAddress(h), h]));
  const cacheRequests: Record<string, { narinfo: number; nar: number }> = {};
  for (const r of lab.cacheRequests().slice(requestsBefore)) {
    const who = byAddress.get(r.client) ?? (r.client === '10.213.77.1' ? 'hawk' : r.client);
    const entry = (cacheRequests[who] ??= { narinfo: 0, nar: 0 });
    if (r.path.endsWith('.narinfo')) entry.narinfo++;
    else if (r.path.startsWith('/nar/')) entry.nar++;
  }

  const systems = systemResults(lab, report, options.generation);
  const checks: Check[] = [
    check(`${options.label}: deploy-all succeeded`, result.exitCode === 0 && report.outcome === 'success', `exit ${result.exitCode}, outcome ${report.outcome}${parsed.error?.message ? `: ${parsed.error.message.split('\n')[0]}` : ''}`),
  ];
  if (options.newGeneration || options.expectBuilds) {
    checks.push(...buildChecks(options.label, systems, targets, lab.hosts));
    const seeds = systems.map((sys) => sys.seed);
    const notFetched = targets.filter((h) => !seeds.includes(h) && !(cacheRequests[h]?.nar ?? 0));
    checks.push(check(`${options.label}: every other host fetched from the cache`, notFetched.length === 0, notFetched.length ? `no NAR download by ${notFetched.join(', ')}` : 'every non-seed host downloaded NARs (cache-access.log)'));
  } else {
    checks.push(check(`${options.label}: nothing was built`, newBuilds.length === 0, `${newBuilds.length} builds (${newBuilds.map((b) => b.name).join(', ') || 'none'})`));
  }
  const toplevelOf = new Map(report.hosts.map((h) => [h.name, (h as { toplevel?: string }).toplevel]));
  const wrong = targets.filter((h) => !toplevelOf.get(h) || lab.currentSystem(h) !== toplevelOf.get(h));
  checks.push(check(`${options.label}: every host runs the deployed toplevel`, wrong.length === 0, wrong.length ? `not running the report's toplevel: ${wrong.join(', ')}` : 'current-system matches the report on every host'));

  return {
    generation: options.generation,
    hosts: targets.length,
    concurrency: options.concurrency,
    exitCode: result.exitCode,
    outcome: report.outcome,
    wallMs: result.durationMs,
    overhead,
    kernelBuiltOn,
    toplevelBuilds: toplevels.length,
    systems,
    cacheRequests,
    report: options.fullCommands ? report : { ...report, commands: compactCommands(report.commands) },
    checks,
  };
}

// --- mixed fleet: two systems in one run -------------------------------------------

/** How long two builds ran at the same time, and what share of the shorter one that is. */
export interface Overlap {
  readonly ms: number;
  /** ms / the shorter build's length (0..1) */
  readonly ofShorter: number;
}

export interface MixedResult {
  /** deploy-all on the fleet inventory, with its per-system builds and checks */
  readonly run: StagedResult;
  /** the two kernel builds (builds.log): overlapping is the point of building systems side by side */
  readonly kernelOverlap: Overlap | undefined;
  /** the two systems' seed builds (`nix build` spans, report.systemBuilds) */
  readonly buildOverlap: Overlap | undefined;
  /** the deploy stage (report.stages) */
  readonly deployMs: number | undefined;
  readonly checks: readonly Check[];
}

function overlapOf(a: { startMs: number; ms: number } | undefined, b: { startMs: number; ms: number } | undefined): Overlap | undefined {
  if (!a || !b || !Number.isFinite(a.startMs + a.ms + b.startMs + b.ms)) return undefined;
  const ms = overlapLength({ start: a.startMs, end: a.startMs + a.ms }, { start: b.startMs, end: b.startMs + b.ms });
  const shorter = Math.min(a.ms, b.ms);
  return { ms, ofShorter: shorter > 0 ? ms / shorter : 0 };
}

/**
 * deploy-all on the lab's fleet inventory (hosts-fleet.json: the opis,
 * aarch64-linux, plus calypso, x86_64-linux) on a fresh generation: one seed
 * build per system at the same time, aarch64 on the opis, x86_64 here on hawk.
 * Checks, besides the staged run's: exactly two systems, x86_64 built here,
 * and the two kernel builds overlapped.
 */
export async function measureMixed(ctx: Context, options: { generation: string; concurrency?: number | undefined }): Promise<MixedResult> {
  const run = await measureStaged(ctx, {
    generation: options.generation,
    newGeneration: true,
    concurrency: options.concurrency,
    label: 'mixed',
    inventoryPath: ctx.lab.fleetInventoryPath,
    targets: [...ctx.lab.hosts, X86_TARGET],
    // hawk, a target of runs on hawk in its lab namespaces only (the bench runs as root outside them).
    exclude: ['hawk'],
  });
  const [a, b] = run.systems;
  const span = (sys: SystemResult | undefined) =>
    sys?.buildStartMs === undefined || sys.buildMs === undefined ? undefined : { startMs: sys.buildStartMs, ms: sys.buildMs };
  const kernelOverlap = run.systems.length === 2 ? overlapOf(a!.kernels[0], b!.kernels[0]) : undefined;
  const buildOverlap = run.systems.length === 2 ? overlapOf(span(a), span(b)) : undefined;
  const x86 = run.systems.find((sys) => sys.system === 'x86_64-linux');
  const checks: Check[] = [
    check(
      'mixed: one seed build per system, aarch64-linux and x86_64-linux',
      sameHosts(run.systems.map((sys) => sys.system), ['aarch64-linux', 'x86_64-linux']),
      `systemBuilds: ${run.systems.map((sys) => `${sys.system} on ${sys.on === 'here' ? `${sys.seed} (here)` : sys.seed}`).join(', ') || 'none'}`,
    ),
    check('mixed: x86_64-linux was built here, on hawk', x86?.on === 'here' && x86.seed === 'hawk', `x86_64-linux: ${x86 ? `${x86.on}, ${x86.seed}` : 'no seed build'}`),
    check(
      'mixed: the two kernel builds overlapped',
      (kernelOverlap?.ms ?? 0) > 0,
      kernelOverlap ? `${(kernelOverlap.ms / 1000).toFixed(2)} s, ${(kernelOverlap.ofShorter * 100).toFixed(0)}% of the shorter` : 'not two kernel builds with times in builds.log',
    ),
  ];
  return { run, kernelOverlap, buildOverlap, deployMs: run.report.stages.find((st) => st.name === 'deploy')?.durationMs, checks };
}

// --- dissection: inside the commands ---------------------------------------------

interface NixActivity {
  readonly id: number;
  readonly type: number;
  readonly text: string;
  readonly fields: readonly unknown[];
  readonly startMs: number;
  endMs?: number;
}

/** Nix's ActivityType (src/libutil/logging.hh) */
const ACT = { copyPath: 100, copyPaths: 103, build: 105, postBuildHook: 110 } as const;

export interface SeedBuildDissection {
  readonly generation: string;
  readonly kernelSeconds: number;
  /** extra NIX_SSHOPTS for this build (the multiplexing experiment), if any */
  readonly extraSshOptions: readonly string[];
  readonly totalMs: number;
  /** simulated work on the critical path: the kernel, then the toplevels (in parallel on the seed) */
  readonly workMs: number;
  readonly beforeFirstBuildMs: number;
  /** from the kernel's end to the first toplevel's start */
  readonly kernelToToplevelsMs: number;
  /** from the first toplevel build's start to the last one's: Nix starts remote builds one at a time */
  readonly toplevelStartSpreadMs: number;
  readonly afterLastBuildMs: number;
  readonly builds: readonly { name: string; machine: string; startMs: number; ms: number }[];
  readonly postBuildHooks: readonly { name: string; startMs: number; ms: number }[];
  readonly postBuildHookTotalMs: number;
}

export interface RebuildDissection {
  readonly host: string;
  readonly totalMs: number;
  readonly activationSeconds: number;
  /** time from each output line to the next: what the lab nixos-rebuild was doing */
  readonly phases: readonly { phase: string; ms: number }[];
}

export interface SshCost {
  readonly freshMs: readonly number[];
  readonly freshMedianMs: number;
  readonly masterMs: number;
  readonly reusedMs: readonly number[];
  readonly reusedMedianMs: number;
}

export interface Dissection {
  readonly seedBuild: SeedBuildDissection;
  /** the same on another fresh generation with ControlMaster/ControlPersist in NIX_SSHOPTS */
  readonly seedBuildMultiplexed: SeedBuildDissection;
  readonly rebuild: RebuildDissection;
  readonly ssh: SshCost;
}

function drvName(path: unknown): string {
  return typeof path === 'string' ? path.replace(/^.*\/[0-9a-z]{32}-/, '').replace(/\.drv$/, '') : '?';
}

/** ssh options that share one connection per host; `ssh -O exit` closes the master. */
export function multiplexOptions(lab: Lab, persistSeconds = 30): string[] {
  return ['-o', 'ControlMaster=auto', '-o', `ControlPath=${join(lab.dir, 'mux-%C')}`, '-o', `ControlPersist=${persistSeconds}`];
}

/** Closes the masters multiplexOptions may have started (they run in hawk's namespace, not an opi's). */
export async function closeMasters(ctx: Context, destinations: readonly string[]): Promise<void> {
  await Promise.all(
    destinations.map((d) => ctx.executor.run({ argv: ['ssh', '-o', `ControlPath=${join(ctx.lab.dir, 'mux-%C')}`, '-O', 'exit', d], timeoutMs: 10_000 })),
  );
}

/**
 * Runs the pipeline's own seed-build command (from planDeploy) on a fresh
 * generation and times Nix's activities from its internal-json log.
 */
export async function dissectSeedBuild(ctx: Context, generation: string, kernelSeconds: number, extraSshOptions: readonly string[] = []): Promise<SeedBuildDissection> {
  const { lab, executor, signal } = ctx;
  await lab.generation(generation, kernelSeconds);
  const inventory = await loadInventory(lab.inventoryPath);
  // Spelt for this machine's Nix, as deploy-all plans it (the seed build's installables depend on it).
  const localNix = await probeNixVersion(executor, 10_000);
  // Without the run's shared connections (they need its control directory): the dissection compares with and
  // without ControlMaster itself (extraSshOptions).
  const plan = planDeploy(inventory, resolveSelection(inventory, { on: [], exclude: [] }), { goal: 'switch', onCoordinator: true, localNix, reuseConnections: false });
  ctx.progress(`dissection: seed build with Nix's activity log (kernel ${kernelSeconds} s${extraSshOptions.length ? ', ssh multiplexed' : ''})`);
  const activities = new Map<number, NixActivity>();
  // The pipeline's own evaluations first: its seed build builds the derivations they instantiate.
  const drvPaths: Record<string, string> = {};
  for (const evaluation of plan.evaluate) {
    const command = fillCommand(evaluation.command, {});
    const result = await must(executor, 'dissection: evaluation', { argv: command.argv, env: { ...lab.env, ...command.env }, timeoutMs: 300_000 }, { signal });
    for (const [host, toplevel] of Object.entries(parseEvaluation(result.stdout, evaluation.hosts))) drvPaths[host] = toplevel.drvPath;
  }
  // The pipeline's own build of the lab's one system's toplevels but the head start's (and the kernel they share),
  // on every builder (as preflight fills them when all answer).
  const system = plan.builds[0]!;
  const seedBuild = fillCommand(system.build, { [`builders:${system.system}`]: joinBuilderSpecs(system.builders.map((b) => b.spec)), ...toplevelDerivationValues(drvPaths) });
  const env = { ...lab.env, ...seedBuild.env };
  if (extraSshOptions.length) env.NIX_SSHOPTS = [env.NIX_SSHOPTS ?? '', ...extraSshOptions].join(' ').trim();
  const t0 = Date.now();
  let build;
  try {
    build = await must(
      executor,
      'dissection: seed build',
      { argv: seedBuild.argv, env, timeoutMs: (kernelSeconds + 120) * 1000 },
      {
        signal,
        onLine: (line) => {
          if (!line.startsWith('@nix ')) return;
          const now = Date.now() - t0;
          let e: { action?: string; id?: number; type?: number; text?: string; fields?: unknown[] };
          try {
            e = JSON.parse(line.slice(5)) as typeof e;
          } catch {
            return;
          }
          if (e.action === 'start' && typeof e.id === 'number') {
            activities.set(e.id, { id: e.id, type: Number(e.type ?? 0), text: e.text ?? '', fields: e.fields ?? [], startMs: now });
          } else if (e.action === 'stop' && typeof e.id === 'number') {
            const a = activities.get(e.id);
            if (a) a.endMs = now;
          }
        },
      },
    );
  } finally {
    if (extraSshOptions.length) {
      await closeMasters(ctx, [sshDestination(builderHost(inventory, system.builders[0]!.host)!)]);
    }
  }
  const totalMs = build.durationMs;
  const all = [...activities.values()];
  const spans = (type: number) => all.filter((a) => a.type === type).map((a) => ({ a, ms: (a.endMs ?? totalMs) - a.startMs }));
  const builds = spans(ACT.build)
    .map(({ a, ms }) => ({ name: drvName(a.fields[0]), machine: String(a.fields[1] ?? '') || 'local', startMs: a.startMs, ms }))
    .sort((x, y) => x.startMs - y.startMs);
  const postBuildHooks = spans(ACT.postBuildHook).map(({ a, ms }) => ({ name: drvName(a.fields[0]), startMs: a.startMs, ms }));
  const kernel = builds.find((b) => b.name.startsWith('linux-'));
  const toplevels = builds.filter((b) => b.name.startsWith('nixos-system-'));
  const firstToplevel = toplevels[0]?.startMs ?? 0;
  const lastBuildEnd = Math.max(0, ...builds.map((b) => b.startMs + b.ms));
  return {
    generation,
    kernelSeconds,
    extraSshOptions,
    totalMs,
    workMs: (kernelSeconds + lab.knobs!.hostSeconds) * 1000,
    beforeFirstBuildMs: builds[0]?.startMs ?? 0,
    kernelToToplevelsMs: kernel ? firstToplevel - (kernel.startMs + kernel.ms) : 0,
    toplevelStartSpreadMs: toplevels.length ? toplevels[toplevels.length - 1]!.startMs - firstToplevel : 0,
    afterLastBuildMs: totalMs - lastBuildEnd,
    builds,
    postBuildHooks,
    postBuildHookTotalMs: postBuildHooks.reduce((sum, h) => sum + h.ms, 0),
  };
}

/** One nixos-rebuild of a host that fetches from the cache (after a seed build), its output lines timed. */
export async function dissectRebuild(ctx: Context, host: string): Promise<RebuildDissection> {
  const { lab, executor, signal } = ctx;
  // nixos-rebuild's phases (what the document's flow and the parallel peer run), asked for: the lab inventory
  // names no method, and the one chosen from hawk (direct) runs no nixos-rebuild.
  const inventory = { ...(await loadInventory(lab.inventoryPath)), deploy: { method: 'nixos-rebuild' as const } };
  ctx.progress(`dissection: one nixos-rebuild of ${host}, which fetches from the cache, its phases timed`);
  // The deploy's own command for that host, as its plan has it with that method.
  const rebuildCommand = planDeploy(inventory, [host], { goal: 'switch', onCoordinator: true, reuseConnections: false }).deploy.hosts[host]!.rebuild;
  const phases: { phase: string; ms: number }[] = [];
  let mark = { text: '(start)', at: Date.now() };
  const onLine = (line: string) => {
    const at = Date.now();
    phases.push({ phase: mark.text, ms: at - mark.at });
    mark = { text: line.replace(/\/nix\/store\/[0-9a-z]{32}-/g, '/nix/store/…-').slice(0, 90), at };
  };
  const rebuild = await must(
    executor,
    `dissection: nixos-rebuild ${host}`,
    { ...rebuildCommand, env: { ...lab.env, ...rebuildCommand.env }, timeoutMs: 120_000 },
    { signal, onLine },
  );
  phases.push({ phase: mark.text, ms: rebuild.startedAt + rebuild.durationMs - mark.at });
  return { host, totalMs: rebuild.durationMs, activationSeconds: lab.knobs!.activationSeconds, phases };
}

/** What one SSH connection costs here, fresh and over a ControlMaster. */
export async function measureSsh(ctx: Context, host: string): Promise<SshCost> {
  const { lab, executor, signal } = ctx;
  const inventory = await loadInventory(lab.inventoryPath);
  ctx.progress('dissection: SSH connection cost, fresh and multiplexed');
  const target = targetHost(inventory, host);
  const fresh: number[] = [];
  for (let i = 0; i < 5; i++) fresh.push((await must(executor, 'ssh probe', { argv: remoteArgv(target, ['true']), timeoutMs: 20_000 }, { signal })).durationMs);
  const muxArgv = ['ssh', ...sshOptionArgs(target), ...multiplexOptions(lab, 15), sshDestination(target), '--', 'true'];
  const reused: number[] = [];
  let masterMs = 0;
  try {
    masterMs = (await must(executor, 'ssh master', { argv: muxArgv, timeoutMs: 20_000 }, { signal })).durationMs;
    for (let i = 0; i < 5; i++) reused.push((await must(executor, 'ssh over the master', { argv: muxArgv, timeoutMs: 20_000 }, { signal })).durationMs);
  } finally {
    await closeMasters(ctx, [sshDestination(target)]);
  }
  return { freshMs: fresh, freshMedianMs: median(fresh)!, masterMs, reusedMs: reused, reusedMedianMs: median(reused)! };
}

/**
 * A copy of the lab inventory whose ssh options share one connection per
 * host (ControlMaster), for deploy-all to run with; the masters are closed after.
 */
export async function withMultiplexedInventory<T>(ctx: Context, run: (inventoryPath: string) => Promise<T>): Promise<T> {
  const { lab } = ctx;
  const inventory = JSON.parse(readFileSync(lab.inventoryPath, 'utf8')) as { ssh: { options: string[] }; hosts: Record<string, { address: string; deployUser?: string }> };
  inventory.ssh.options = [...inventory.ssh.options, ...multiplexOptions(lab)];
  const path = join(lab.dir, 'hosts-multiplexed.json');
  writeFileSync(path, `${JSON.stringify(inventory, null, 2)}\n`);
  try {
    return await run(path);
  } finally {
    await closeMasters(ctx, Object.values(inventory.hosts).map((h) => `${h.deployUser ?? 'root'}@${h.address}`));
  }
}
