/**
 * Each host's closure diff in the deploy (issue 13 #4): planned after the
 * probe, run beside the other steps (from the activation's end when a settle
 * window follows it; before the activation only when asked about:
 * --interactive, --dry-run --diff), recorded in the report, shown on
 * the host's row; --dry-run --diff stops there; --interactive asks with it; a diff that
 * cannot be made never stops a deploy.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deployStageChoices, parseCliArgs } from '../../lib/cli/args.ts';
import { runDeployCli } from '../../lib/cli/deploy.ts';
import type { Io } from '../../lib/cli/io.ts';
import { renderPlan } from '../../lib/plan/render.ts';
import { planRollback } from '../../lib/plan/rollback.ts';
import { fleetInventory, repoRoot, fleetInventoryPath } from '../helpers/fixtures.ts';
import { CLOSURE_DIFF_ANSWER, deployStepsRun, FLEET_HOSTS, planFleet, runPipeline } from '../helpers/pipeline.ts';
import { when } from '../helpers/recording-executor.ts';

describe('closure diff in the deploy', () => {
  it('is planned for every host, after the probe, on the target as the deploy user, unless --no-diff', () => {
    const plan = planFleet();
    for (const host of plan.hosts) {
      const diff = plan.deploy.hosts[host]!.diff!;
      expect(diff.argv.at(-1)).toContain(`avalanche-closure-diff '{{previous-system}}' '{{toplevel:${host}}}'`);
      expect(diff.argv.at(-3)).toBe(`deploy@${host}.internal`);
      expect(diff.argv.join(' ')).not.toContain('sudo');
    }
    expect(renderPlan(plan)).toContain('compare its closure with what it runs (nix store diff-closures)');
    expect(Object.values(planFleet({ diff: false }).deploy.hosts).every((h) => h.diff === undefined)).toBe(true);
    // --interactive and --dry-run --diff need it, whatever --no-diff says.
    expect(planFleet({ diff: false, interactive: true }).deploy.hosts.opi01!.diff).toBeDefined();
    expect(renderPlan(planFleet({ diffOnly: true }))).toContain('and stop: nothing is activated');
  });

  it('starts after the probe and runs beside the other steps; the host ends with it, in the report', async () => {
    // opi01's diff answers only once its activation has started (or after 2 s, which fails the test below).
    let activating!: () => void;
    const activated = new Promise<void>((resolve) => (activating = resolve));
    let diffAnswered = false;
    let activatedBeforeDiff: boolean | undefined;
    const run = await runPipeline([
      (spec) => (spec.argv.includes('nixos-rebuild') && spec.argv.includes('deploy@opi01.internal') ? ((activatedBeforeDiff = !diffAnswered), activating(), undefined) : undefined),
      when(['avalanche-closure-diff', 'deploy@opi01.internal'], () => ({
        until: Promise.race([activated, new Promise((r) => setTimeout(r, 2000))]).then(() => (diffAnswered = true)),
        stdout: CLOSURE_DIFF_ANSWER,
      })),
    ]);
    expect(run.result.outcome).toBe('success');
    expect(activatedBeforeDiff).toBe(true);
    expect(deployStepsRun(run).filter((s) => s.startsWith('opi01'))).toEqual(['opi01 probe', 'opi01 diff', 'opi01 arm', 'opi01 rebuild', 'opi01 fresh login', 'opi01 health', 'opi01 confirm']);
    const opi01 = run.result.report.hosts.find((h) => h.name === 'opi01')!;
    expect(opi01.diff).toMatchObject({ kind: 'diff', sizeDeltaBytes: 1024, packages: [{ name: 'linux', change: 'changed', before: ['6.1.1'], after: ['6.1.2'] }] });
  });

  it('a host that fails does not wait for its diff: stopped, the failure reported at once', async () => {
    const run = await runPipeline([
      when(['avalanche-closure-diff', 'deploy@opi02.internal'], { untilAborted: true }),
      when(['--flake', '.#opi02'], { exitCode: 1, stderr: 'activation failed' }),
    ]);
    expect(run.result.outcome).toBe('failed');
    const diffAt = run.executor.calls.findIndex((c) => c.argv.some((a) => a.includes('avalanche-closure-diff')) && c.argv.includes('deploy@opi02.internal'));
    expect(run.executor.results[diffAt]).toMatchObject({ aborted: true });
    expect(run.result.report.hosts.find((h) => h.name === 'opi02')).toMatchObject({ state: 'rolled-back', diff: undefined });
    // The others deployed, each with its diff.
    expect(run.result.report.hosts.filter((h) => h.name !== 'opi02').map((h) => [h.state, h.diff?.kind])).toEqual([['deployed', 'diff'], ['deployed', 'diff']]);
  });

  it('with a settle window, starts once the activation ended, beside the checks; a host failing there has its diff stopped', async () => {
    const settle = { editInventory: (json: any) => (json.health = { systemState: 'skip', retries: 0, intervalSeconds: 0, settleSeconds: 1 }) };
    const isDiff = (host: string) => (c: { argv: readonly string[] }) => c.argv.some((a) => a.includes('avalanche-closure-diff')) && c.argv.includes(`deploy@${host}.internal`);
    const isActivation = (host: string) => (c: { argv: readonly string[] }) => c.argv.includes('nixos-rebuild') && c.argv.includes(`deploy@${host}.internal`);
    const run = await runPipeline(
      [
        // opi02's diff runs until stopped; its new login fails (after its activation): it fails there.
        when(['avalanche-closure-diff', 'deploy@opi02.internal'], { untilAborted: true }),
        (spec) => (spec.argv.includes('ControlPath=none') && spec.argv.includes('deploy@opi02.internal') ? { exitCode: 255, stderr: 'Connection refused' } : undefined),
      ],
      settle,
    );
    for (const host of FLEET_HOSTS) {
      const calls = run.executor.calls;
      expect(calls.findIndex(isDiff(host)), host).toBeGreaterThan(calls.findIndex(isActivation(host)));
    }
    expect(run.executor.results[run.executor.calls.findIndex(isDiff('opi02'))]).toMatchObject({ aborted: true });
    expect(run.result.report.hosts.map((h) => [h.name, h.state, h.diff?.kind])).toEqual([['opi01', 'deployed', 'diff'], ['opi02', 'failed', undefined], ['opi03', 'deployed', 'diff']]);
  });

  it('with a settle window, a host rolled back for its checks still has in the report what it would have changed', async () => {
    const health = { editInventory: (json: any) => (json.health = { systemState: 'running', retries: 1, intervalSeconds: 0, settleSeconds: 1 }) };
    const run = await runPipeline([when(['is-system-running', 'deploy@opi01.internal'], { exitCode: 1, stdout: 'degraded\n' }), when(['is-system-running'], { stdout: 'running\n' })], health);
    expect(run.result.report.hosts.find((h) => h.name === 'opi01')).toMatchObject({ state: 'rolled-back', diff: { kind: 'diff' } });
    expect(deployStepsRun(run).filter((s) => s.startsWith('opi01 '))).toEqual(['opi01 probe', 'opi01 arm', 'opi01 rebuild', 'opi01 diff', 'opi01 fresh login', 'opi01 health', 'opi01 health', 'opi01 rollback']);
  });

  it('a diff that cannot be made says why and the deploy goes on', async () => {
    const run = await runPipeline([when(['avalanche-closure-diff', 'deploy@opi02.internal'], { exitCode: 3, stderr: 'closure-diff: cannot get the new toplevel here' })]);
    expect(run.result.outcome).toBe('success');
    const opi02 = run.result.report.hosts.find((h) => h.name === 'opi02')!;
    expect(opi02).toMatchObject({ state: 'deployed' });
    expect(opi02.diff).toBeUndefined();
  });

  it('diffOnly (--dry-run --diff) activates nothing: no watchdog, no nixos-rebuild', async () => {
    const run = await runPipeline([], { plan: { diffOnly: true } });
    expect(run.result.outcome).toBe('success');
    const steps = deployStepsRun(run);
    expect(steps.some((s) => / (arm|rebuild|confirm)$/.test(s))).toBe(false);
    expect(steps.filter((s) => s.endsWith(' diff'))).toHaveLength(3);
    for (const host of run.result.report.hosts) expect(host).toMatchObject({ state: 'not-started', generation: 'previous', note: 'dry run: compared, not activated' });
  });

  it('--interactive asks with each host\'s diff; no leaves that host untouched', async () => {
    const asked: string[] = [];
    const run = await runPipeline([], {
      plan: { interactive: true },
      confirmActivation: async (host, diff) => {
        asked.push(`${host} ${diff?.kind}`);
        return host !== 'opi02';
      },
    });
    expect(asked.sort()).toEqual(['opi01 diff', 'opi02 diff', 'opi03 diff']);
    const steps = deployStepsRun(run);
    expect(steps.filter((s) => s.startsWith('opi02'))).toEqual(['opi02 probe', 'opi02 diff']);
    expect(steps).toContain('opi01 rebuild');
    expect(run.result.report.hosts.find((h) => h.name === 'opi02')).toMatchObject({ state: 'not-started', note: 'not activated: declined at the --interactive question' });
  });

  it('the command line\'s --dry-run --diff, --no-diff and --interactive reach both planners', () => {
    const choices = (command: 'deploy-all' | 'rollback', args: string[]) => deployStageChoices(parseCliArgs(command, args));
    const deployPlan = (args: string[]) => planFleet(choices('deploy-all', args)).deploy;
    const rollbackPlan = (args: string[]) => planRollback(fleetInventory(), FLEET_HOSTS, { onCoordinator: true, to: () => ({ kind: 'previous' }), ...choices('rollback', ['@opi', ...args]) }).deploy;
    for (const plan of [deployPlan, rollbackPlan]) {
      expect(plan(['--dry-run', '--diff'])).toMatchObject({ diffOnly: true, interactive: false });
      expect(plan(['--dry-run'])).toMatchObject({ diffOnly: false });
      expect(plan([])).toMatchObject({ diffOnly: false, interactive: false });
      expect(plan([]).hosts.opi01!.diff).toBeDefined();
      expect(plan(['--no-diff']).hosts.opi01!.diff).toBeUndefined();
      expect(plan(['--interactive'])).toMatchObject({ interactive: true });
      expect(plan(['--rolling', '--batch-size', '2', '--keep-going', '--no-rollback'])).toMatchObject({ rolling: true, concurrency: 2, keepGoing: true, rollback: false });
    }
  });

  it('refuses what cannot work, with exit 2', async () => {
    const cli = async (args: string[], io: Partial<Io> = {}) => {
      const err: string[] = [];
      const code = await runDeployCli('deploy', ['--inventory', fleetInventoryPath(), ...args], { stdout: () => {}, stderr: (t) => err.push(t), isTTY: false, env: {}, ...io });
      return { code, stderr: err.join('\n') };
    };
    expect(await cli(['opi01', '--diff'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--diff goes with --dry-run') });
    expect(await cli(['opi01', '--diff', '--no-diff', '--dry-run'])).toMatchObject({ code: 2 });
    expect(await cli(['opi01', '--interactive', '--json'])).toMatchObject({ code: 2 });
    expect(await cli(['opi01', '--interactive'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--interactive asks on the terminal') });
    expect(await cli(['opi01', '--interactive'], { ask: async () => true, env: { CI: 'true' } })).toMatchObject({ code: 2 });
  });
});
