/** What one benchmark run records (bench/results/<ISO timestamp>.json), and the figures it compares with. */
import { expectedDeployWaves, median, type ReportSpan } from './analysis.ts';
import type { Knobs } from './lab.ts';
import type { Check, Dissection, MixedResult, SequentialResult, StagedResult } from './measure.ts';
import type { PeersPoint } from './peers.ts';
import { writeJsonAtomically } from '../lib/util/atomic-json.ts';

/** nix-distributed-builds.md: ~40 min kernel per opi, ~120 min one by one, ~44 min staged, cache download ~1 min. */
export const DOCUMENT = {
  kernelMinutes: 40,
  cacheDownloadMinutes: 1,
  sequentialMinutes: 120,
  stagedMinutes: 44,
  ratio: 44 / 120,
  /** one kernel build + a cache fetch + activation: (40 + 1 + 1) / 120 */
  physicalLimitRatio: 0.35,
} as const;

export interface ScalePoint {
  readonly hosts: number;
  readonly expectedDeployWaves: number;
  readonly wallMs: number;
  readonly runMs: number;
  readonly stages: Readonly<Record<string, number | undefined>>;
  readonly seedDeployMs: number | undefined;
  readonly otherHostsMedianMs: number | undefined;
  readonly kernelBuilds: number;
  readonly toplevelBuilds: number;
  readonly overheadMs: number;
  readonly labUpMs: number;
  readonly run: StagedResult;
}

export interface BenchResults {
  readonly schema: 'avalanche-deploy/bench@1';
  readonly id: string;
  readonly startedAt: string;
  finishedAt?: string;
  outcome: 'success' | 'checks-failed' | 'failed' | 'interrupted';
  error?: string;
  readonly machine: { hostname: string; cpus: number; node: string; kernel: string };
  readonly source: { commit: string; uncommitted: readonly string[] };
  readonly timeScale: '1 minute = 1 second';
  readonly knobs: Knobs;
  readonly options: {
    concurrency: number | undefined;
    scale: readonly number[];
    peers: boolean;
    /** absent in results written before --strategies: all four */
    strategies?: readonly string[];
    /** the rounds of the strategies at each point of `scale` (absent in results written before rounds: 1 each) */
    peerRounds?: readonly number[];
    onlyScale: boolean;
    dissectKernelSeconds: number;
    sequential: boolean;
    mixed: boolean;
  };
  readonly document: typeof DOCUMENT;
  /** the lab's ideal numbers at these knobs (see README "Benchmark") */
  readonly model: {
    sequentialSeconds: number;
    stagedFloorSeconds: number;
    physicalFloorSeconds: number;
    stagedFloorRatio: number;
    physicalFloorRatio: number;
  };
  lockWaitMs?: number;
  labUpMs?: number;
  sequential?: SequentialResult;
  staged?: StagedResult;
  /** staged wall / sequential total */
  ratio?: number;
  /** deploy-all on the opis and calypso (aarch64-linux + x86_64-linux), a fresh generation */
  mixed?: MixedResult;
  /** mixed wall / staged wall (aarch64 only, same run): two systems should cost about what one does */
  mixedRatio?: number;
  noopRerun?: StagedResult;
  /** the same with ControlMaster in the inventory's ssh options: what connection reuse would save */
  noopRerunMultiplexed?: StagedResult;
  dissection?: Dissection;
  scale?: { concurrency: number | undefined; points: ScalePoint[]; verdict?: string };
  /** per scale point: the document's flow, parallel nixos-rebuild, colmena's way and deploy-all, same lab and knobs */
  peers?: PeersPoint[];
  checks: Check[];
  /** the benchmark's progress lines, with the 1-minute load average when each was printed */
  readonly timeline: { atMs: number; load1: number; text: string }[];
}

/**
 * The lab at these knobs, ideally: one by one, each opi builds the kernel, its
 * toplevel and activates; staged, the kernel and the toplevels are built once
 * and activation happens twice on the critical path (the seed first, then the
 * rest at once); physically, one activation would do. The cache fetch is
 * near-instant in the lab (local HTTP, tiny NARs).
 */
export function model(knobs: Knobs, hosts = 3): BenchResults['model'] {
  const { kernelSeconds: k, hostSeconds: h, activationSeconds: a } = knobs;
  const sequentialSeconds = hosts * (k + h + a);
  const stagedFloorSeconds = k + h + 2 * a;
  const physicalFloorSeconds = k + h + a;
  return {
    sequentialSeconds,
    stagedFloorSeconds,
    physicalFloorSeconds,
    stagedFloorRatio: stagedFloorSeconds / sequentialSeconds,
    physicalFloorRatio: physicalFloorSeconds / sequentialSeconds,
  };
}

export function scalePoint(run: StagedResult, labUpMs: number): ScalePoint {
  const stages = Object.fromEntries(run.report.stages.map((s: ReportSpan) => [s.name, s.durationMs]));
  const seedHost = run.report.hosts.find((h) => h.name === run.report.seed);
  const others = run.report.hosts.filter((h) => h.name !== run.report.seed && h.durationMs !== undefined).map((h) => h.durationMs!);
  return {
    hosts: run.hosts,
    expectedDeployWaves: expectedDeployWaves(run.hosts, run.concurrency),
    wallMs: run.wallMs,
    runMs: run.report.totalMs,
    stages,
    seedDeployMs: seedHost?.durationMs,
    otherHostsMedianMs: median(others),
    kernelBuilds: run.kernelBuiltOn.length,
    toplevelBuilds: run.toplevelBuilds,
    overheadMs: run.overhead.overheadMs,
    labUpMs,
    run,
  };
}

/** Does the wall time follow deploy waves, or the number of builds? Numbers, then the answer. */
export function scaleVerdict(points: readonly ScalePoint[], knobs: Knobs): string | undefined {
  if (points.length < 2) return undefined;
  const sorted = [...points].sort((a, b) => a.hosts - b.hosts);
  const first = sorted[0]!;
  const last = sorted[sorted.length - 1]!;
  const growthS = (last.wallMs - first.wallMs) / 1000;
  const extraHosts = last.hosts - first.hosts;
  const perBuildS = knobs.kernelSeconds + knobs.hostSeconds;
  const extraWaves = last.expectedDeployWaves - first.expectedDeployWaves;
  const perWaveS = (first.otherHostsMedianMs ?? 0) / 1000;
  // Built per host: more than one kernel build (the time alone cannot say: with the evaluation cost on, evaluations grow with the hosts too).
  const withBuilds = last.kernelBuilds > 1;
  const delta = (name: string) => ((last.stages[name] ?? 0) - (first.stages[name] ?? 0)) / 1000;
  const parts = ['preflight', 'evaluate', 'seed-build', 'wait-for-cache', 'deploy']
    .map((s) => [s, delta(s)] as const)
    .filter(([, d]) => Math.abs(d) >= 0.05)
    .map(([s, d]) => `${s} ${d >= 0 ? '+' : ''}${d.toFixed(1)} s`);
  const residualS = growthS - extraWaves * perWaveS;
  return [
    `${first.hosts}→${last.hosts} hosts: wall ${growthS >= 0 ? '+' : ''}${growthS.toFixed(1)} s (${((growthS * 1000) / first.wallMs * 100).toFixed(0)}%).`,
    `If every host built its own system it would add ${extraHosts} × ${perBuildS} s = ${extraHosts * perBuildS} s;`,
    `deploy waves go ${first.expectedDeployWaves}→${last.expectedDeployWaves}, i.e. ≈ ${(extraWaves * perWaveS).toFixed(1)} s expected from waves.`,
    withBuilds
      ? `The kernel was built ${last.kernelBuilds}× at ${last.hosts} hosts: something is built per host.`
      : Math.abs(residualS) <= 0.5
        ? 'The wall time does not grow with the number of builds and follows the deploy waves.'
        : `The wall time does not grow with the number of builds; beyond the deploy waves it grows ${residualS.toFixed(1)} s (${(residualS / Math.max(1, extraHosts)).toFixed(2)} s per extra host)${parts.length ? ` — by stage: ${parts.join(', ')}` : ''}.`,
  ].join(' ');
}

/** To a temporary name first, then renamed: never half a file under bench/results. */
export function writeResults(dir: string, results: BenchResults): Promise<string> {
  return writeJsonAtomically(dir, results.id, results);
}
