/**
 * The lab flake's evaluation cost (LAB_EVAL_SECONDS, LAB_EVAL_MIB; test/lab/flake.sh):
 * off by default, and when on, each evaluation of a host's toplevel is real
 * work in the evaluating nix and prints one `lab-eval <host> <generation>`
 * trace — once per host and evaluator process, nothing for the host's system
 * attribute — which is how the benchmark counts evaluations per host.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { countEvaluations } from '../../bench/peers.ts';
import { ZxExecutor } from '../../lib/exec/zx-executor.ts';
import { repoRoot } from '../helpers/fixtures.ts';
import { inventoryCopy, lab, labEnv, labPath, labSkipReason, revision, runOnCoordinator, scriptArgv } from './lab.ts';

const executor = new ZxExecutor();
const HOSTS = ['opi01', 'opi02', 'opi03'];

/** flake.sh --generation G with the evaluation knobs in its environment. */
async function writeGeneration(label: string, knobs: { seconds: number; mib: number }): Promise<string> {
  const generation = revision(label);
  const result = await executor.run({
    argv: ['bash', join(repoRoot, 'test/lab/flake.sh'), '--generation', generation],
    env: { ...labEnv(), LAB_EVAL_SECONDS: String(knobs.seconds), LAB_EVAL_MIB: String(knobs.mib) },
    timeoutMs: 60_000,
  });
  expect(result.exitCode, result.stderr).toBe(0);
  return generation;
}

/** One `nix eval` on the coordinator applying `expr` to nixosConfigurations; its stderr's lab-eval markers. */
async function evaluate(expr: string): Promise<{ stdout: string; markers: string[] }> {
  const result = await runOnCoordinator(['nix', 'eval', '--json', `path:${labPath('flake')}#nixosConfigurations`, '--apply', expr], 120_000);
  expect(result.exitCode, result.stderr).toBe(0);
  return { stdout: result.stdout, markers: result.stderr.split('\n').flatMap((l) => l.match(/lab-eval \S+ \S+/g) ?? []) };
}

describe.skipIf(!lab)(`the lab's evaluation cost${lab ? '' : ` (skipped: ${labSkipReason})`}`, () => {
  afterAll(async () => {
    // Later files evaluate the flake as it is left: leave it without the cost.
    if (lab) await writeGeneration('eval-cost-off-again', { seconds: 0, mib: 0 });
  });

  it('is off by default: a toplevel evaluates without a trace', async () => {
    await writeGeneration('eval-cost-off', { seconds: 0, mib: 0 });
    const { stdout, markers } = await evaluate('cs: cs.opi01.config.system.build.toplevel.drvPath');
    expect(JSON.parse(stdout)).toMatch(/-nixos-system-opi01-.*\.drv$/);
    expect(markers).toEqual([]);
    expect(readFileSync(labPath('flake/lab-flake.env'), 'utf8')).toMatch(/^LAB_FLAKE_EVAL_ROUNDS=0$/m);
  });

  it('when on, is sized for this machine and counted once per host and evaluator process, the system attribute free', async () => {
    const generation = await writeGeneration('eval-cost-on', { seconds: 1, mib: 16 });
    // flake.sh measured this machine's rate once for the lab, and sized the rounds from it.
    const rate = Number(readFileSync(labPath('eval-rate'), 'utf8'));
    expect(rate).toBeGreaterThan(0);
    expect(readFileSync(labPath('flake/lab-flake.env'), 'utf8')).toContain(`LAB_FLAKE_EVAL_ROUNDS=${rate}\n`);

    // opi01's toplevel read three times and opi02's once, in one process: one evaluation each; opi03 not at all.
    const one = await evaluate('cs: [ cs.opi01.config.system.build.toplevel.drvPath cs.opi01.config.system.build.toplevel.outPath cs.opi02.config.system.build.toplevel.drvPath cs.opi01.config.system.build.toplevel.name ]');
    expect(JSON.parse(one.stdout)).toHaveLength(4);
    expect(one.markers.sort()).toEqual([`lab-eval opi01 ${generation}`, `lab-eval opi02 ${generation}`]);
    expect(countEvaluations(one.markers, HOSTS, generation)).toMatchObject({ total: 2, perHost: { opi01: 1, opi02: 1, opi03: 0 }, min: 0, max: 1 });

    // Another process evaluates again.
    const two = await evaluate('cs: cs.opi01.config.system.build.toplevel.drvPath');
    expect(two.markers).toEqual([`lab-eval opi01 ${generation}`]);

    // The system attribute (what a planner reads first) costs nothing.
    const system = await evaluate('cs: map (h: cs.${h}.config.nixpkgs.hostPlatform.system) [ "opi01" "opi02" "opi03" ]');
    expect(JSON.parse(system.stdout)).toEqual(['aarch64-linux', 'aarch64-linux', 'aarch64-linux']);
    expect(system.markers).toEqual([]);
  });

  it('a deploy-all run evaluates each host exactly once: its evaluate stage, not the seed build nor the deploy stage', async () => {
    const generation = await writeGeneration('eval-once', { seconds: 1, mib: 16 });
    // The product's default method (what the coordinator's nixos-rebuild allows: direct on hawk, --store-path on calypso).
    const inventory = inventoryCopy('default-method', (json) => delete json.deploy);
    // bench/bin/nix (first on PATH) runs the real nix and appends each lab-eval trace with the nix command that printed it.
    const evalLog = labPath('shared', 'eval-once.log');
    writeFileSync(evalLog, '');
    chmodSync(evalLog, 0o666);
    const asCoordinator = scriptArgv('deploy-all', ['--yes', '--json'], inventory);
    const deployAll = asCoordinator.slice(asCoordinator.indexOf('--') + 1);
    const result = await runOnCoordinator(
      ['bash', '-c', 'PATH="$0:$PATH" exec "$@"', join(repoRoot, 'bench/bin'), 'env', 'BENCH_REAL_NIX=/usr/bin/nix', `BENCH_EVAL_LOG=${evalLog}`, ...deployAll],
      170_000,
    );
    expect(result.exitCode, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(JSON.parse(result.stdout).report.hosts.map((h: { name: string; state: string }) => [h.name, h.state])).toEqual(HOSTS.map((h) => [h, 'deployed']));
    const evaluations = countEvaluations(readFileSync(evalLog, 'utf8').split('\n'), HOSTS, generation);
    expect(evaluations).toMatchObject({ total: HOSTS.length, min: 1, max: 1, byCommand: { 'nix-eval': HOSTS.length } });
  });
});
