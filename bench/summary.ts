/** The readable summary of a benchmark run (the JSON has everything). */
import type { MixedResult, StagedResult } from './measure.ts';
import { medianRuns, type PeerRun, type PeersPoint, STRATEGY_TITLES } from './peers.ts';
import type { BenchResults } from './results.ts';

const s = (ms: number | undefined, digits = 1) => (ms === undefined ? '—' : `${(ms / 1000).toFixed(digits)} s`);
const pct = (part: number, whole: number) => `${((part / whole) * 100).toFixed(1)}%`;

function table(header: readonly string[], rows: readonly (readonly string[])[], right: readonly number[] = []): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    '  ' + cells.map((c, i) => (right.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

/** A deploy-all run's stages and hosts, each with its duration, outcome and start. */
function spanTables(r: StagedResult['report']): string[] {
  const seeds = new Set([r.seed, ...(r.systemBuilds ?? []).map((b) => b.seed)]);
  const stageRows = r.stages.map((st) => [st.name, s(st.durationMs, 2), st.outcome ?? '', st.startMs === undefined ? '' : `at ${s(st.startMs, 2)}`]);
  const hostRows = r.hosts.map((h) => [`${h.name}${seeds.has(h.name) ? ' (seed)' : ''}`, s(h.durationMs, 2), h.state ?? '', h.startMs === undefined ? '' : `at ${s(h.startMs, 2)}`]);
  return [...table(['stage', 'duration', 'outcome', 'start'], stageRows, [1]), ...table(['host', 'deploy', 'state', 'start'], hostRows, [1])];
}

/** The mixed-fleet run: its wall time and stages, each system's build and kernel, how long the kernels overlapped. */
function mixedBlock(mixed: MixedResult, staged: StagedResult | undefined, ratio: number | undefined): string[] {
  const run = mixed.run;
  const systemRows = run.systems.map((sys) => [
    sys.system,
    sys.on === 'here' ? `${sys.seed} (here)` : `builders, seed ${sys.seed}`,
    sys.hosts.join(' '),
    sys.buildStartMs === undefined ? '—' : `at ${s(sys.buildStartMs, 2)}`,
    s(sys.buildMs, 2),
    `${sys.kernels.length}× on ${sys.kernels.map((k) => k.host).join(', ') || '—'}`,
    sys.kernels[0] ? `at ${s(sys.kernels[0].startMs, 2)}` : '—',
    s(sys.kernels[0]?.ms, 2),
    sys.toplevels.map((t) => `${t.host}→${t.builtOn}`).join(' '),
  ]);
  const overlap = (what: string, o: MixedResult['kernelOverlap']) =>
    o ? `${what} overlapped ${s(o.ms, 2)} = ${(o.ofShorter * 100).toFixed(1)}% of the shorter` : `${what}: no overlap measured`;
  return [
    `  wall ${s(run.wallMs, 2)} (its own clock ${s(run.report.totalMs, 2)}), outcome ${run.outcome}; deploy stage ${s(mixed.deployMs, 2)}; ${run.hosts} hosts, ${run.systems.length} systems`,
    ...table(['system', 'built on', 'hosts', 'build start', 'build span', 'kernel', 'kernel start', 'kernel took', 'toplevels (host→built on)'], systemRows, [3, 4, 6, 7]),
    `  ${overlap('the two kernel builds (builds.log)', mixed.kernelOverlap)}; ${overlap('the two seed builds (report)', mixed.buildOverlap)}`,
    ...(staged && ratio !== undefined
      ? [`  mixed (2 systems) ${s(run.wallMs, 2)} vs staged (aarch64 only, same run) ${s(staged.wallMs, 2)}: ratio ${ratio.toFixed(3)} (${run.wallMs >= staged.wallMs ? '+' : '−'}${s(Math.abs(run.wallMs - staged.wallMs), 2)} for the second system)`]
      : []),
    ...spanTables(run.report),
  ];
}

function stagedBlock(run: StagedResult, knobs: BenchResults['knobs'], floorS: number): string[] {
  const o = run.overhead;
  const r = run.report;
  const idle = Object.entries(o.idleByStage)
    .filter(([, ms]) => ms >= 5)
    .map(([stage, ms]) => `${stage} ${s(ms, 2)}`)
    .join(', ');
  // Each stage's time beyond the simulated work it contains: where a run loses time.
  const work: Record<string, number> = { 'seed-build': (knobs.kernelSeconds + knobs.hostSeconds) * 1000, deploy: 2 * knobs.activationSeconds * 1000 };
  const beyond = [
    `start-up ${s(o.startupMs, 2)}`,
    ...r.stages
      .filter((st) => st.durationMs !== undefined)
      .map((st) => `${st.name} ${s(st.durationMs! - (work[st.name] ?? 0), 2)}${work[st.name] ? ` (of ${s(st.durationMs, 2)}, ${s(work[st.name], 0)} simulated)` : ''}`),
    `exit ${s(o.shutdownMs, 2)}`,
  ];
  return [
    `  wall ${s(run.wallMs, 2)} (the deploy-all process; its own clock ${s(r.totalMs, 2)}), outcome ${run.outcome}`,
    ...spanTables(r),
    `  kernel built ${run.kernelBuiltOn.length}× (on ${run.kernelBuiltOn.join(', ') || '—'}), ${run.toplevelBuilds} toplevel builds; cache downloads (NARs): ${
      Object.entries(run.cacheRequests)
        .filter(([, c]) => c.nar > 0)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([who, c]) => `${who} ${c.nar}`)
        .join(', ') || 'none'
    }`,
    '',
    `  orchestration overhead = wall − critical path of its commands = ${s(o.wallMs, 2)} − ${s(o.criticalPathMs, 2)} = ${s(o.overheadMs, 2)} (${pct(o.overheadMs, o.wallMs)} of the wall)`,
    `    process start-up before the run's clock (tsx, modules, inventory, plan): ${s(o.startupMs, 2)}`,
    `    idle inside the run (no command running): ${s(o.idleInRunMs, 2)}${idle ? ` — ${idle}` : ''}`,
    `    after the run's clock (report, JSON, exit): ${s(o.shutdownMs, 2)}`,
    ...(o.largestGaps.length
      ? [`    largest idle gaps: ${o.largestGaps.slice(0, 3).map((g) => `${s(g.ms, 2)} in ${g.stage} (after ${g.after}, before ${g.before})`).join('; ')}`]
      : []),
    `  inside the commands: the simulated work on the critical path is ${floorS.toFixed(0)} s (kernel ${knobs.kernelSeconds} + toplevel ${knobs.hostSeconds} + 2 activations × ${knobs.activationSeconds}); the commands took ${s(o.criticalPathMs, 2)}, i.e. ${s(o.criticalPathMs - floorS * 1000, 2)} more`,
    `  beyond the simulated work, by stage: ${beyond.join(', ')}`,
    ...table(
      ['command', 'runs', 'total', 'median', 'max'],
      o.byKind.map((k) => [k.kind.length > 70 ? `${k.kind.slice(0, 69)}…` : k.kind, String(k.count), s(k.totalMs, 2), s(k.medianMs, 2), s(k.maxMs, 2)]),
      [1, 2, 3, 4],
    ),
  ];
}

const mib = (bytes: number | undefined) => (bytes === undefined ? '—' : `${(bytes / 2 ** 20).toFixed(0)} MiB`);

/**
 * One scale point's strategies side by side, where their time went, and
 * deploy-all against each peer. With rounds, each strategy's median run
 * (bench/peers.ts medianRuns), its walls in the order they ran beside it,
 * and how many rounds deploy-all won against each peer.
 */
export function peersBlock(point: PeersPoint, knobs: BenchResults['knobs']): string[] {
  const floorS = knobs.kernelSeconds + knobs.hostSeconds + knobs.activationSeconds + knobs.evalSeconds;
  const memory = Object.entries(point.containerMemoryMiB).filter(([h]) => h !== 'calypso').map(([, m]) => m);
  const rounds = point.rounds ?? 1;
  const medians = medianRuns(point);
  const runsOf = (strategy: PeerRun['strategy']) => point.runs.filter((r) => r.strategy === strategy);
  const out = [
    `  ${point.hosts} hosts; lab up in ${s(point.labUpMs)}${memory.length ? `; opi containers after boot ${Math.min(...memory)}–${Math.max(...memory)} MiB each (cgroup memory, page cache included)` : ''}`,
    ...(rounds > 1 ? [`  ${rounds} rounds, each strategy once per round: each strategy's median run below, all its walls in the order they ran`] : []),
    `  physical floor (one evaluation + kernel + toplevel + activation): ${floorS} s`,
    ...table(
      ['strategy', 'wall', 'kernel builds', 'toplevels', 'evaluations/host', 'coordinator CPU', 'peak memory', 'ok'],
      medians.map((r) => [
        r.strategy,
        rounds > 1 ? `${s(r.wallMs)} (${runsOf(r.strategy).map((x) => s(x.wallMs)).join(', ')})` : s(r.wallMs),
        String(r.kernelBuiltOn.length),
        String(r.toplevelBuilds),
        r.evaluations.min === r.evaluations.max ? String(r.evaluations.min) : `${r.evaluations.min}–${r.evaluations.max}`,
        s(r.coordinator?.cpuMs),
        mib(r.coordinator?.peakMemoryBytes),
        runsOf(r.strategy).every((x) => x.ok) ? 'yes' : 'NO',
      ]),
      [1, 2, 3, 4, 5, 6],
    ),
  ];
  for (const r of medians) {
    out.push(`  ${r.strategy}: ${STRATEGY_TITLES[r.strategy]}${rounds > 1 ? ` (its median run, round ${r.round ?? 1})` : ''}`);
    const by = Object.entries(r.evaluations.byCommand ?? {}).map(([c, n]) => `${c} ${n}`);
    if (by.length) out.push(`    evaluations by command: ${by.join(', ')}`);
    for (const ph of r.phases) out.push(`    at ${s(ph.startMs, 2).padStart(8)}  ${s(ph.ms, 2).padStart(8)}  ${ph.name}`);
  }
  for (const r of point.runs) {
    if (r.error) out.push(`  ${r.strategy}${rounds > 1 ? ` (round ${r.round ?? 1})` : ''} FAILED: ${r.error.split('\n')[0]}`);
    for (const [host, units] of Object.entries(r.failedUnits ?? {})) out.push(`  ${r.strategy}${rounds > 1 ? ` (round ${r.round ?? 1})` : ''}: ${host}: failed units: ${units.join('; ')}`);
  }
  const ours = medians.find((r) => r.strategy === 'deploy-all');
  if (ours) {
    const ratios = medians
      .filter((r) => r.strategy !== 'deploy-all')
      .map((r) => {
        const won = rounds > 1 ? `, won ${roundsWon(point, r.strategy)} of ${rounds} rounds` : '';
        return `${r.strategy} ${(ours.wallMs / r.wallMs).toFixed(2)} (${ours.wallMs <= r.wallMs ? `${s(r.wallMs - ours.wallMs)} faster` : `${s(ours.wallMs - r.wallMs)} SLOWER`}${won})`;
      });
    if (ratios.length) out.push(`  deploy-all ÷ peer (wall${rounds > 1 ? ', medians' : ''}): ${ratios.join('; ')}`);
  }
  return out;
}

/** In how many rounds deploy-all's wall was below `peer`'s (a round where either is missing or failed counts as lost). */
export function roundsWon(point: Pick<PeersPoint, 'runs'>, peer: PeerRun['strategy']): number {
  const wall = (strategy: PeerRun['strategy'], round: number) => point.runs.find((r) => r.strategy === strategy && (r.round ?? 1) === round && r.ok)?.wallMs;
  const rounds = new Set(point.runs.map((r) => r.round ?? 1));
  return [...rounds].filter((round) => {
    const ours = wall('deploy-all', round);
    const theirs = wall(peer, round);
    return ours !== undefined && theirs !== undefined && ours < theirs;
  }).length;
}

export function renderSummary(results: BenchResults, resultsPath: string | undefined): string {
  const { knobs, model, document: doc } = results;
  const out: string[] = [];
  out.push(
    `avalanche-deploy benchmark ${results.id} — ${results.timeScale}: kernel ${knobs.kernelSeconds} s, per-host derivation ${knobs.hostSeconds} s, activation ${knobs.activationSeconds} s, evaluation ${knobs.evalSeconds ?? 0} s / ${knobs.evalMib ?? 0} MiB per host`,
    `machine: ${results.machine.cpus} CPUs, node ${results.machine.node}; source ${results.source.commit.slice(0, 12)}${results.source.uncommitted.length ? ` + ${results.source.uncommitted.length} uncommitted files` : ''}`,
  );

  const seq = results.sequential;
  if (seq) {
    out.push('', 'SEQUENTIAL BASELINE — each opi builds (no substituters) and switches itself, one after another');
    out.push(
      ...table(
        ['host', 'nix build', 'profile', 'switch', 'total'],
        seq.hosts.map((h) => [h.host, s(h.buildMs), s(h.profileMs, 2), s(h.activateMs, 2), s(h.totalMs)]),
        [1, 2, 3, 4],
      ),
      `  total ${s(seq.totalMs)}; kernel built ${seq.kernelBuiltOn.length}× (${seq.kernelBuiltOn.join(', ')}); model 3 × (kernel + toplevel + activation) = ${model.sequentialSeconds} s (document: ~${doc.sequentialMinutes} min)`,
    );
  }

  const staged = results.staged;
  if (staged) {
    out.push('', 'STAGED — deploy-all, fresh generation');
    out.push(...stagedBlock(staged, knobs, model.stagedFloorSeconds));
  }

  const mixed = results.mixed;
  if (mixed) {
    out.push('', 'MIXED FLEET — deploy-all on the opis (aarch64-linux) + calypso (x86_64-linux), fresh generation: one seed build per system, at once');
    out.push(...mixedBlock(mixed, staged, results.mixedRatio));
  }

  if (seq && staged && results.ratio !== undefined) {
    out.push(
      '',
      'RESULT',
      `  sequential ${s(seq.totalMs)}   staged ${s(staged.wallMs)}   ratio staged/sequential ${results.ratio.toFixed(3)}   (${(seq.totalMs / staged.wallMs).toFixed(2)}× faster, ${s(seq.totalMs - staged.wallMs)} saved)`,
      `  document: ${doc.stagedMinutes}/${doc.sequentialMinutes} min = ${doc.ratio.toFixed(2)}; physical limit ≈ ${doc.physicalLimitRatio} (one kernel build + a cache fetch + activation)`,
      `  lab floors at these knobs: staged as designed (seed deployed first) ${model.stagedFloorSeconds} s = ${model.stagedFloorRatio.toFixed(3)}; physical (one activation) ${model.physicalFloorSeconds} s = ${model.physicalFloorRatio.toFixed(3)}`,
      `  staged is ${s(staged.wallMs - model.stagedFloorSeconds * 1000, 2)} above its floor and ${s(staged.wallMs - model.physicalFloorSeconds * 1000, 2)} above the physical floor; orchestration overhead (wall − critical path) ${s(staged.overhead.overheadMs, 2)}`,
      ...(mixed && results.mixedRatio !== undefined
        ? [`  mixed fleet (2 systems) ${s(mixed.run.wallMs)}: ${results.mixedRatio.toFixed(3)}× staged; kernels overlapped ${s(mixed.kernelOverlap?.ms, 1)} (${((mixed.kernelOverlap?.ofShorter ?? 0) * 100).toFixed(0)}% of the shorter)`]
        : []),
      `  note: those ${s(staged.wallMs - model.stagedFloorSeconds * 1000, 1)} (sequential: ${s(seq.totalMs - model.sequentialSeconds * 1000, 1)}) are real seconds of ssh, eval and process start, not scaled minutes: in the fleet they stay seconds against ~${doc.stagedMinutes} min`,
    );
  }

  const noop = results.noopRerun;
  if (noop) {
    const a = knobs.activationSeconds * 2;
    const mux = results.noopRerunMultiplexed;
    out.push(
      '',
      `NO-OP RE-RUN (same generation, nothing to build): wall ${s(noop.wallMs, 2)} = ${a} s of activations (seed, then the rest) + ${s(noop.wallMs - a * 1000, 2)} of pipeline`,
      ...(mux
        ? [
            `  the same with ssh multiplexing (ControlMaster in the inventory's ssh options): wall ${s(mux.wallMs, 2)}, ${s(noop.wallMs - mux.wallMs, 2)} less`,
          ]
        : []),
      ...table(
        ['stage', 'as is', ...(mux ? ['multiplexed'] : [])],
        noop.report.stages.map((st) => [st.name, s(st.durationMs, 2), ...(mux ? [s(mux.report.stages.find((m) => m.name === st.name)?.durationMs, 2)] : [])]),
        [1, 2],
      ),
      ...table(
        ['host', 'deploy as is', ...(mux ? ['multiplexed'] : [])],
        noop.report.hosts.map((h) => [
          `${h.name}${h.name === noop.report.seed ? ' (seed)' : ''}`,
          s(h.durationMs, 2),
          ...(mux ? [s(mux.report.hosts.find((m) => m.name === h.name)?.durationMs, 2)] : []),
        ]),
        [1, 2],
      ),
    );
  }

  const d = results.dissection;
  if (d) {
    const seedBuild = (b: NonNullable<BenchResults['dissection']>['seedBuild'], title: string) => [
      `  ${title}: ${s(b.totalMs, 2)} for ${s(b.workMs, 2)} of simulated work (kernel ${b.kernelSeconds} s + toplevel ${knobs.hostSeconds} s)`,
      `    ${s(b.beforeFirstBuildMs, 2)} before the first build; ${s(b.kernelToToplevelsMs, 2)} from the kernel's end to the first toplevel's start; toplevel starts spread over ${s(b.toplevelStartSpreadMs, 2)}; ${s(b.afterLastBuildMs, 2)} after the last build`,
      `    post-build hooks (push to the cache + GC root, one at a time): ${b.postBuildHooks.length}, ${s(b.postBuildHookTotalMs, 2)} in all`,
    ];
    out.push(
      '',
      `DISSECTION (fresh generations, kernel ${d.seedBuild.kernelSeconds} s: the overheads do not depend on its length)`,
      ...seedBuild(d.seedBuild, 'seed build (the pipeline\'s own command)'),
      ...table(
        ['derivation', 'on', 'start', 'took'],
        d.seedBuild.builds.map((x) => [x.name, x.machine, s(x.startMs, 2), s(x.ms, 2)]),
        [2, 3],
      ),
      ...seedBuild(d.seedBuildMultiplexed, 'the same with ControlMaster in NIX_SSHOPTS'),
      `  one nixos-rebuild (${d.rebuild.host}, fetches from the cache): ${s(d.rebuild.totalMs, 2)}, of which switch-to-configuration sleeps ${d.rebuild.activationSeconds} s`,
      ...table(
        ['after the line', 'until the next'],
        d.rebuild.phases.filter((p) => p.ms >= 5).map((p) => [p.phase, s(p.ms, 2)]),
        [1],
      ),
      `  ssh: a fresh connection ${s(d.ssh.freshMedianMs, 3)} (median of ${d.ssh.freshMs.length}); over a ControlMaster ${s(d.ssh.reusedMedianMs, 3)} (master set-up ${s(d.ssh.masterMs, 3)})`,
    );
  }

  const scale = results.scale;
  if (scale?.points.length) {
    out.push('', `SCALE — deploy-all on a fresh lab and generation each; concurrency ${scale.concurrency ?? 'all (default)'}`);
    out.push(
      ...table(
        ['hosts', 'waves', 'wall', 'seed build', 'wait', 'deploy', 'seed deploy', 'per-host median', 'kernel builds', 'toplevels', 'overhead'],
        scale.points.map((p) => [
          String(p.hosts),
          String(p.expectedDeployWaves),
          s(p.wallMs),
          s(p.stages['seed-build']),
          s(p.stages['wait-for-cache'], 2),
          s(p.stages.deploy),
          s(p.seedDeployMs),
          s(p.otherHostsMedianMs),
          String(p.kernelBuilds),
          String(p.toplevelBuilds),
          s(p.overheadMs, 2),
        ]),
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      ),
    );
    if (scale.verdict) out.push(`  ${scale.verdict}`);
  }

  for (const point of results.peers ?? []) {
    out.push('', `PEERS at ${point.hosts} hosts — each strategy on a fresh generation of the same lab; evaluation ${knobs.evalSeconds} s CPU / ${knobs.evalMib} MiB per host`);
    out.push(...peersBlock(point, knobs));
  }

  const failed = results.checks.filter((c) => !c.ok);
  out.push('', failed.length ? `CHECKS: ${failed.length} of ${results.checks.length} FAILED` : results.checks.length ? `checks: all ${results.checks.length} passed` : 'checks: none ran');
  for (const c of failed) out.push(`  ✗ ${c.name}: ${c.detail}`);
  if (results.error) out.push(`ERROR (${results.outcome}): ${results.error}`);
  if (resultsPath) out.push(`results: ${resultsPath}`);
  return out.join('\n');
}
