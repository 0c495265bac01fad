#!/usr/bin/env -S npx tsx
/**
 * npm run bench: the staged pipeline against the sequential baseline on the
 * real lab, at 1 minute = 1 second. `npm run bench -- --help` for options.
 * Takes /run/avalanche-lab.lock for the whole run and always tears the lab
 * down (also on failure and Ctrl-C). Not part of `npm test`.
 */
import { setMaxListeners } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, hostname, loadavg, release } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ZxExecutor } from '../lib/exec/zx-executor.ts';
import { BenchError, Interrupted, type Knobs, Lab, LAB_LOCK, LAB_MARKER, labHosts } from './lab.ts';
import { acquireLabLock, type LabLock } from './lock.ts';
import { type Context, dissectRebuild, dissectSeedBuild, measureMixed, measureSequential, measureSsh, measureStaged, multiplexOptions, withMultiplexedInventory } from './measure.ts';
import { type BenchResults, DOCUMENT, model, scalePoint, scaleVerdict, writeResults } from './results.ts';
import { defaultPeerRounds, measurePeers, medianRuns, STRATEGIES, type Strategy } from './peers.ts';
import { renderSummary } from './summary.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

const HELP = `npm run bench [-- options]

Measures avalanche-deploy on the real lab (test/lab) at 1 minute = 1 second,
in one run, each measurement on a fresh kernel derivation (new flake generation):

  sequential baseline  on opi01, opi02, opi03 in turn, over ssh: nix build of its own
                       toplevel with no substituters, nix-env --set, switch-to-configuration
  staged               scripts/deploy-all.ts --json on the same three opis
  mixed fleet          deploy-all on the opis plus calypso (x86_64-linux; hosts-fleet.json):
                       one seed build per system at once, aarch64 on the opis, x86_64 on hawk;
                       each system's build span, where and when each kernel was built, how
                       long the two kernels overlapped, the wall time against staged's
  no-op re-run         deploy-all again on the same generation (pure pipeline cost), and once
                       more with ControlMaster in the inventory's ssh options (connection reuse)
  dissection           the seed build's Nix activities (also with ControlMaster in NIX_SSHOPTS),
                       one nixos-rebuild's phases, the cost of an ssh connection
  scale and peers      on 3, 10 and 30 hosts, a fresh lab each, each strategy on a fresh
                       generation: the document's flow (nixos-rebuild --fast --flake …#host
                       --target-host deploy@… --use-remote-sudo, one host after another, the seed
                       first), plain parallel nixos-rebuild (every host at once), colmena's way (one
                       nix build of every toplevel, then per host, 10 at once, nix copy --to ssh://
                       from hawk and nix-env --set + switch-to-configuration over ssh with sudo),
                       and deploy-all. Per strategy: wall, kernel builds, evaluations per host
                       (bench/bin/nix counts the lab flake's lab-eval traces), the coordinator's CPU
                       time and peak memory (each strategy in its own cgroup: the orchestrator and
                       every child on hawk), where the time went; deploy-all's ratio to each peer.
                       At 3 hosts three rounds, interleaved, each strategy judged by its median run

It prints the totals, the ratio staged/sequential against the document's 44/120 min,
the orchestration overhead (wall time − the union of the intervals in which a command
of deploy-all's own command log ran), per-stage times and the scale table, and writes
everything to bench/results/<ISO timestamp>.json. Needs root; ~27 minutes on 2 cores (--only-scale: ~23).
Waits for ${LAB_LOCK} (so it is safe next to a test run) and tears the lab down
(test/lab/down.sh) also on failure and Ctrl-C.

Options:
  --kernel-seconds <n>          the shared kernel derivation (default 40: ~40 min)
  --host-seconds <n>            each host's toplevel derivation (default 1: ~1 min)
  --activation-seconds <n>      switch-to-configuration (default 1: ~1 min)
  --eval-seconds <n>            CPU seconds per evaluation of a host's toplevel (default 1;
                                0: off), standing in for nixpkgs' module system
  --eval-mib <n>                MiB held per evaluation (default 256; 0: off)
  --scale <n,n,…>               host counts for the scale table, 1..30 (default 3,10,30)
  --skip-scale                  no scale table (and so no peers)
  --skip-peers                  scale table with deploy-all only (no document/parallel/colmena)
  --strategies <s,s,…>          which of the peers run (default document,parallel,colmena,deploy-all;
                                without deploy-all the scale table stays empty)
  --only-scale                  only the scale table and the peers: no sequential, staged,
                                no-op, mixed or dissection (the 3-host block)
  --skip-sequential             no baseline (and so no ratio)
  --skip-mixed                  no mixed-fleet run
  --peer-rounds <n>             rounds of the strategies at every scale point, each strategy once
                                per round, interleaved; compared by their median runs (default 3
                                at 3 hosts or fewer, where they end within a run's noise of each
                                other, else 1)
  --concurrency <n>             passed to deploy-all (default: deploy-all's own)
  --dissect-kernel-seconds <n>  kernel of the dissection's generation (default 2)
  --results-dir <dir>           where the JSON goes (default bench/results)
  --lock-timeout <seconds>      how long to wait for the lab lock (default 1800)
  -h, --help                    this help

Exit codes: 0 measured and every check passed (kernel built 3× sequentially, 1×
staged, 1× per system and overlapping in the mixed run, hosts run their new systems, …); 1 a measurement or a check failed;
2 usage error or not root; 130 interrupted.`;

interface Options {
  readonly knobs: Knobs;
  readonly scale: readonly number[];
  readonly peers: boolean;
  readonly strategies: readonly Strategy[];
  readonly onlyScale: boolean;
  readonly sequential: boolean;
  readonly mixed: boolean;
  readonly concurrency: number | undefined;
  /** --peer-rounds; undefined: defaultPeerRounds(hosts) */
  readonly peerRounds: number | undefined;
  readonly dissectKernelSeconds: number;
  readonly resultsDir: string;
  readonly lockTimeoutSeconds: number;
}

class UsageError extends Error {}

function parseOptions(argv: readonly string[]): Options | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        'kernel-seconds': { type: 'string', default: '40' },
        'host-seconds': { type: 'string', default: '1' },
        'activation-seconds': { type: 'string', default: '1' },
        'eval-seconds': { type: 'string', default: '1' },
        'eval-mib': { type: 'string', default: '256' },
        scale: { type: 'string', default: '3,10,30' },
        'skip-scale': { type: 'boolean', default: false },
        'skip-peers': { type: 'boolean', default: false },
        'only-scale': { type: 'boolean', default: false },
        strategies: { type: 'string', default: STRATEGIES.join(',') },
        'skip-sequential': { type: 'boolean', default: false },
        'skip-mixed': { type: 'boolean', default: false },
        concurrency: { type: 'string' },
        'peer-rounds': { type: 'string' },
        'dissect-kernel-seconds': { type: 'string', default: '2' },
        'results-dir': { type: 'string', default: resolve(repoRoot, 'bench/results') },
        'lock-timeout': { type: 'string', default: '1800' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  const int = (name: string, text: string, min: number, max: number) => {
    if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new UsageError(`--${name} '${text}': a whole number from ${min} to ${max}`);
    return Number(text);
  };
  const scale = values['skip-scale'] ? [] : values.scale.split(',').map((n) => int('scale', n.trim(), 1, 30));
  if (values['only-scale'] && !scale.length) throw new UsageError('--only-scale with --skip-scale leaves nothing to measure');
  return {
    knobs: {
      kernelSeconds: int('kernel-seconds', values['kernel-seconds'], 1, 3600),
      hostSeconds: int('host-seconds', values['host-seconds'], 0, 600),
      activationSeconds: int('activation-seconds', values['activation-seconds'], 0, 600),
      evalSeconds: int('eval-seconds', values['eval-seconds'], 0, 600),
      evalMib: int('eval-mib', values['eval-mib'], 0, 8192),
    },
    scale: [...new Set(scale)].sort((a, b) => a - b),
    peers: !values['skip-peers'],
    strategies: values.strategies.split(',').map((name) => {
      const strategy = STRATEGIES.find((st) => st === name.trim());
      if (!strategy) throw new UsageError(`--strategies: '${name}' is not one of ${STRATEGIES.join(', ')}`);
      return strategy;
    }),
    onlyScale: values['only-scale'],
    sequential: !values['skip-sequential'],
    mixed: !values['skip-mixed'],
    concurrency: values.concurrency === undefined ? undefined : int('concurrency', values.concurrency, 1, 30),
    peerRounds: values['peer-rounds'] === undefined ? undefined : int('peer-rounds', values['peer-rounds'], 1, 9),
    dissectKernelSeconds: int('dissect-kernel-seconds', values['dissect-kernel-seconds'], 1, 3600),
    resultsDir: resolve(values['results-dir']),
    lockTimeoutSeconds: int('lock-timeout', values['lock-timeout'], 0, 86_400),
  };
}

async function gitSource(executor: ZxExecutor): Promise<BenchResults['source']> {
  const head = await executor.run({ argv: ['git', '-C', repoRoot, 'rev-parse', 'HEAD'], timeoutMs: 10_000 });
  const status = await executor.run({ argv: ['git', '-C', repoRoot, 'status', '--porcelain', '--untracked-files=normal'], timeoutMs: 10_000 });
  return {
    commit: head.exitCode === 0 ? head.stdout.trim() : 'unknown',
    uncommitted: status.exitCode === 0 ? status.stdout.split('\n').filter(Boolean).map((l) => l.slice(3)) : [],
  };
}

async function main(argv: readonly string[]): Promise<number> {
  let options: Options | 'help';
  try {
    options = parseOptions(argv);
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n(npm run bench -- --help for usage)\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: the lab needs root (network namespaces, bind mounts): sudo npm run bench\n');
    return 2;
  }

  const benchStart = Date.now();
  // Also kept in the results with the load average: other work on this machine skews wall times.
  const timeline: { atMs: number; load1: number; text: string }[] = [];
  const progress = (text: string) => {
    const atMs = Date.now() - benchStart;
    timeline.push({ atMs, load1: loadavg()[0]!, text });
    process.stderr.write(`[${(atMs / 1000).toFixed(1).padStart(6)} s] ${text}\n`);
  };
  const controller = new AbortController();
  // Every command in flight listens to it (30 nixos-rebuilds at once in the parallel peer): more than Node's
  // leak warning allows (10). The strategies bound them themselves.
  setMaxListeners(0, controller.signal);
  let signals = 0;
  let lastSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // One Ctrl-C arrives twice: from the terminal and relayed by tsx (and npm). Count keypresses.
    if (Date.now() - lastSignalAt < 1000) return;
    lastSignalAt = Date.now();
    signals++;
    if (signals === 1) {
      progress(`${signal}: stopping the running commands, then tearing the lab down (again: keeps tearing down; a third time quits without)`);
      controller.abort();
    } else if (signals === 2) {
      progress(`${signal}: still tearing the lab down (a few seconds); once more quits at once and leaves it up`);
    } else {
      process.exit(130);
    }
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);

  const executor = new ZxExecutor();
  const startedAt = new Date(benchStart).toISOString();
  const { knobs } = options;
  const results: BenchResults = {
    schema: 'avalanche-deploy/bench@1',
    id: startedAt.replace(/[:.]/g, '-'),
    startedAt,
    outcome: 'failed',
    machine: { hostname: hostname(), cpus: cpus().length, node: process.version, kernel: release() },
    source: await gitSource(executor),
    timeScale: '1 minute = 1 second',
    knobs,
    options: {
      concurrency: options.concurrency,
      scale: options.scale,
      peers: options.peers,
      strategies: options.strategies,
      ...(options.peers ? { peerRounds: options.scale.map((hosts) => options.peerRounds ?? defaultPeerRounds(hosts)) } : {}),
      onlyScale: options.onlyScale,
      dissectKernelSeconds: options.dissectKernelSeconds,
      sequential: options.sequential && !options.onlyScale,
      mixed: options.mixed && !options.onlyScale,
    },
    document: DOCUMENT,
    model: model(knobs),
    checks: [],
    timeline,
  };
  // Generation names end up in store path names: letters, digits, - only.
  const generation = (what: string) => `bench${benchStart.toString(36)}-${what}`;
  const lab = new Lab(executor, repoRoot, process.env.LAB_DIR || '/var/lib/avalanche-lab', controller.signal);
  const ctx: Context = { executor, lab, repoRoot, signal: controller.signal, progress };

  const withLab = async <T>(hosts: readonly string[], run: (upMs: number) => Promise<T>): Promise<T> => {
    progress(
      `lab up: ${hosts.length > 5 ? `${hosts[0]}…${hosts[hosts.length - 1]}` : hosts.join(' ')} (kernel ${knobs.kernelSeconds} s, toplevel ${knobs.hostSeconds} s, activation ${knobs.activationSeconds} s, evaluation ${knobs.evalSeconds} s / ${knobs.evalMib} MiB)`,
    );
    let failed = true;
    try {
      const value = await run(await lab.up(hosts, knobs));
      failed = false;
      return value;
    } finally {
      progress('lab down');
      try {
        await lab.down();
      } catch (error) {
        // Do not hide the error that brought us here behind the teardown's.
        if (!failed) throw error;
        progress(`also: ${(error as Error).message}`);
      }
    }
  };

  let lock: LabLock | undefined;
  let resultsPath: string | undefined;
  try {
    lock = await acquireLabLock(executor, {
      timeoutSeconds: options.lockTimeoutSeconds,
      signal: controller.signal,
      onWaiting: () => progress(`waiting for ${LAB_LOCK}: another run (tests, demo, bench) is using the lab`),
    });
    results.lockWaitMs = lock.waitedMs;
    if (lock.waitedMs > 1000) progress(`took the lab lock after ${(lock.waitedMs / 1000).toFixed(0)} s`);
    if (existsSync(LAB_MARKER)) {
      const dir = readFileSync(LAB_MARKER, 'utf8').trim();
      throw new BenchError(
        `a lab is up (${dir}) although nobody holds ${LAB_LOCK}: a run that does not take the lock may be using it. ` +
          'If it is a leftover, tear it down with `bash test/lab/down.sh` and run the benchmark again.',
      );
    }

    // Every measured deploy-all starts from its script's bundle, as every run but the first after a change does
    // (lib/cli/script-bundle.ts); the first makes it (~0.3 s).
    await executor.run({ argv: [join(repoRoot, 'node_modules/.bin/tsx'), join(repoRoot, 'scripts/deploy-all.ts'), '--help'], timeoutMs: 60_000 });

    if (!options.onlyScale) await withLab(labHosts(3), async (upMs) => {
      results.labUpMs = upMs;
      if (options.sequential) {
        results.sequential = await measureSequential(ctx, generation('seq'));
        results.checks.push(...results.sequential.checks);
        progress(`sequential: ${(results.sequential.totalMs / 1000).toFixed(1)} s`);
      }
      results.staged = await measureStaged(ctx, { generation: generation('staged'), newGeneration: true, concurrency: options.concurrency, label: 'staged', fullCommands: true });
      results.checks.push(...results.staged.checks);
      progress(`staged: ${(results.staged.wallMs / 1000).toFixed(1)} s`);
      if (results.sequential) results.ratio = results.staged.wallMs / results.sequential.totalMs;
      results.noopRerun = await measureStaged(ctx, { generation: generation('staged'), newGeneration: false, concurrency: options.concurrency, label: 'no-op re-run' });
      results.checks.push(...results.noopRerun.checks);
      // The same no-op run with every ssh connection to a host shared (an improvement to measure, not the pipeline as it is).
      results.noopRerunMultiplexed = await withMultiplexedInventory(ctx, (inventoryPath) =>
        measureStaged(ctx, { generation: generation('staged'), newGeneration: false, concurrency: options.concurrency, label: 'no-op re-run, ssh multiplexed', inventoryPath }),
      );
      results.checks.push(...results.noopRerunMultiplexed.checks);
      // After the no-op re-runs (they re-deploy the staged generation, which a new one would replace).
      if (options.mixed) {
        results.mixed = await measureMixed(ctx, { generation: generation('mixed'), concurrency: options.concurrency });
        results.checks.push(...results.mixed.run.checks, ...results.mixed.checks);
        results.mixedRatio = results.mixed.run.wallMs / results.staged.wallMs;
        progress(`mixed: ${(results.mixed.run.wallMs / 1000).toFixed(1)} s`);
      }
      const seedBuild = await dissectSeedBuild(ctx, generation('dissect'), options.dissectKernelSeconds);
      const rebuild = await dissectRebuild(ctx, 'opi01');
      const ssh = await measureSsh(ctx, 'opi01');
      const seedBuildMultiplexed = await dissectSeedBuild(ctx, generation('dissectmux'), options.dissectKernelSeconds, multiplexOptions(lab));
      results.dissection = { seedBuild, seedBuildMultiplexed, rebuild, ssh };
    });

    if (options.scale.length) results.scale = { concurrency: options.concurrency, points: [] };
    if (options.scale.length && options.peers) results.peers = [];
    for (const count of options.scale) {
      await withLab(labHosts(count), async (upMs) => {
        let run;
        if (options.peers) {
          // deploy-all's row of the peers is also the scale table's point.
          const rounds = options.peerRounds ?? defaultPeerRounds(count);
          const point = await measurePeers(ctx, { generation, labUpMs: upMs, concurrency: options.concurrency, strategies: options.strategies, rounds });
          results.peers!.push(point);
          results.checks.push(...point.runs.flatMap((r) => r.checks));
          run = medianRuns(point).find((r) => r.strategy === 'deploy-all')?.staged;
        } else {
          run = await measureStaged(ctx, { generation: generation(`scale${count}`), newGeneration: true, concurrency: options.concurrency, label: `scale ${count}` });
          results.checks.push(...run.checks);
        }
        if (run) results.scale!.points.push(scalePoint(run, upMs));
        progress(`scale ${count}: ${run ? `${(run.wallMs / 1000).toFixed(1)} s` : 'deploy-all did not run'}`);
      });
    }
    if (results.scale) results.scale.verdict = scaleVerdict(results.scale.points, knobs);
    results.outcome = results.checks.every((c) => c.ok) ? 'success' : 'checks-failed';
  } catch (error) {
    const interrupted = error instanceof Interrupted || controller.signal.aborted;
    results.outcome = interrupted ? 'interrupted' : 'failed';
    results.error = interrupted ? 'interrupted' : error instanceof BenchError ? error.message : ((error as Error).stack ?? String(error));
  } finally {
    await lock?.release();
    results.finishedAt = new Date().toISOString();
    try {
      resultsPath = await writeResults(options.resultsDir, results);
    } catch (error) {
      progress(`could not write the results: ${(error as Error).message}`);
    }
  }
  process.stdout.write(`\n${renderSummary(results, resultsPath)}\n`);
  return results.outcome === 'success' ? 0 : results.outcome === 'interrupted' ? 130 : 1;
}

process.exitCode = await main(process.argv.slice(2));
