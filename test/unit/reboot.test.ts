/**
 * --goal boot --reboot: the plan's reboot part (data, every value an argument),
 * and one host's reboot as executed: back on the new generation, back on the
 * old one (boot default set back), never back.
 */
import { describe, expect, it } from 'vitest';
import { deployStageChoices, parseCliArgs } from '../../lib/cli/args.ts';
import { UsageError } from '../../lib/errors.ts';
import { planDeploy } from '../../lib/plan/assemble.ts';
import { renderPlan } from '../../lib/plan/render.ts';
import { planRollback } from '../../lib/plan/rollback.ts';
import { parseBootCheck } from '../../lib/remote/scripts.ts';
import { FIXTURE_TOPLEVEL, fleetInventory } from '../helpers/fixtures.ts';
import { deployStepsRun, FLEET_HOSTS, runPipeline } from '../helpers/pipeline.ts';
import { remoteWords, type Responder, when } from '../helpers/recording-executor.ts';

const hosts = FLEET_HOSTS;
const OLD = '/nix/store/old-system';

describe('planning --reboot', () => {
  const inventory = fleetInventory();

  it('gives each host a reboot part: the marker and reboot as root, the boot check over a fresh connection, the bound, the toplevel it must boot', () => {
    const plan = planDeploy(inventory, hosts, { goal: 'boot', onCoordinator: true, reboot: true, rolling: true });
    const steps = plan.deploy.hosts.opi01!;
    const reboot = steps.reboot!;
    expect(reboot).toMatchObject({
      marker: '/run/avalanche-deploy/reboot-{{run-id}}',
      waitMs: 600_000,
      pollIntervalMs: 2000,
      bootedSystem: '/run/booted-system',
      expectBooted: '{{toplevel:opi01}}',
    });
    expect(reboot.command.argv.at(-1)).toMatch(/^sudo -n -- sh -c /);
    expect(remoteWords(reboot.command.argv).slice(-2)).toEqual(['avalanche-reboot', '/run/avalanche-deploy/reboot-{{run-id}}']);
    expect(remoteWords(reboot.poll.argv).slice(0, 2)).toEqual(['sh', '-c']);
    expect(remoteWords(reboot.poll.argv).slice(-4)).toEqual(['avalanche-boot-check', '/run/avalanche-deploy/reboot-{{run-id}}', '/run/booted-system', '/run/current-system']);
    // The run's multiplexed master dies with the host: every poll logs in anew.
    expect(reboot.poll.argv.indexOf('ControlPath=none')).toBeGreaterThan(0);
    expect(reboot.poll.argv.indexOf('ControlPath=none')).toBeLessThan(reboot.poll.argv.indexOf('deploy@opi01.internal'));
    // Health checks after the reboot, although boot activates nothing; no watchdog (nothing to revert live).
    expect(steps.health?.checks.map((c) => c.name)).toContain('ssh answers');
    expect(steps.arm).toBeUndefined();
  });

  it('takes its bound from timeouts.rebootSeconds; without --reboot there is no reboot part and boot has no health checks', () => {
    const quick = fleetInventory((json) => (json.timeouts = { rebootSeconds: 90 }));
    expect(planDeploy(quick, hosts, { goal: 'boot', onCoordinator: true, reboot: true }).deploy.hosts.opi02!.reboot!.waitMs).toBe(90_000);
    const plain = planDeploy(inventory, hosts, { goal: 'boot', onCoordinator: true }).deploy.hosts.opi02!;
    expect(plain.reboot).toBeUndefined();
    expect(plain.health).toBeUndefined();
  });

  it('refuses --reboot with a goal other than boot, in the planner as on the command line', () => {
    expect(() => planDeploy(inventory, hosts, { goal: 'switch', onCoordinator: true, reboot: true })).toThrow(UsageError);
    expect(() => parseCliArgs('deploy-all', ['--reboot'])).toThrow(/--reboot goes with --goal boot \(got switch\)/);
    expect(() => parseCliArgs('rollback', ['opi01', '--goal', 'test', '--reboot'])).toThrow(/--reboot goes with --goal boot/);
    expect(deployStageChoices(parseCliArgs('deploy-all', ['--goal', 'boot', '--reboot'])).reboot).toBe(true);
  });

  it('a rollback --goal boot --reboot reboots into the chosen generation', () => {
    const plan = planRollback(inventory, ['opi01'], { goal: 'boot', onCoordinator: true, reboot: true, to: () => ({ kind: 'previous' }) });
    expect(plan.deploy.hosts.opi01!.reboot?.expectBooted).toBe('{{toplevel:opi01}}');
  });

  it('--dry-run shows the reboot, the wait and the check', () => {
    const text = renderPlan(planDeploy(inventory, hosts, { goal: 'boot', onCoordinator: true, reboot: true }));
    expect(text).toContain('reboot into the new boot default: leave /run/avalanche-deploy/reboot-{{run-id}}');
    expect(text).toContain('wait for it to come back (at most 600 s, asked every 2 s over a new connection)');
    expect(text).toContain('it must have booted {{toplevel:opi01}} (/run/booted-system)');
  });
});

describe('parseBootCheck', () => {
  it('reads the boot check and the reboot command', () => {
    expect(parseBootCheck('marker=gone\nboot-id=b2\nbooted-system=/nix/store/x\ncurrent-system=/nix/store/x\nstate=running\n')).toEqual({
      rebooted: true, bootId: 'b2', bootedSystem: '/nix/store/x', currentSystem: '/nix/store/x', state: 'running', marker: undefined,
    });
    expect(parseBootCheck('marker=present\nboot-id=b1\nbooted-system=\ncurrent-system=\nstate=\n')).toMatchObject({ rebooted: false, bootedSystem: undefined, state: undefined });
    expect(parseBootCheck('boot-id=b1\nmarker=/run/avalanche-deploy/reboot-r1\n')).toMatchObject({ rebooted: undefined, bootId: 'b1', marker: '/run/avalanche-deploy/reboot-r1' });
  });
});

/** The reboot command: prints its marker, then the session ends with 255 as sshd stops (expected). */
const rebootAnswers = when(['avalanche-reboot'], { stdout: 'boot-id=b1\nmarker=/run/avalanche-deploy/reboot-r1\n', stderr: 'Connection to opi closed by remote host.', exitCode: 255 });

/** The boot check answering, in turn, `answers` (the last one from then on), per host. */
function bootChecks(answers: Record<string, readonly string[]>): Responder {
  const asked: Record<string, number> = {};
  return (spec) => {
    if (!spec.argv.some((a) => a.includes('avalanche-boot-check'))) return undefined;
    const host = Object.keys(answers).find((h) => spec.argv.includes(`deploy@${h}.internal`));
    if (!host) return undefined;
    const n = (asked[host] = (asked[host] ?? 0) + 1);
    const list = answers[host]!;
    const said = list[Math.min(n, list.length) - 1]!;
    return said === 'down' ? { exitCode: 255, stderr: 'ssh: connect to host opi port 22: Connection refused' } : { stdout: said };
  };
}
const back = (booted: string) => `marker=gone\nboot-id=b2\nbooted-system=${booted}\ncurrent-system=${booted}\nstate=running\n`;
const SAME_BOOT = 'marker=present\nboot-id=b1\nbooted-system=/nix/store/old-system\ncurrent-system=/nix/store/old-system\nstate=running\n';
const STARTING = `marker=gone\nboot-id=b2\nbooted-system=\ncurrent-system=\nstate=starting\n`;

const fast = (json: any) => {
  json.timeouts.rebootSeconds = 1;
};

describe('running --reboot', () => {
  it('reboots, waits through the same boot, a refused login and a starting system, checks what it booted, then the health checks', async () => {
    const all = { opi01: [SAME_BOOT, 'down', STARTING, back(FIXTURE_TOPLEVEL)], opi02: [back(FIXTURE_TOPLEVEL)], opi03: [back(FIXTURE_TOPLEVEL)] };
    const run = await runPipeline([rebootAnswers, bootChecks(all)], { plan: { goal: 'boot', reboot: true, rolling: true }, editInventory: (json) => (json.timeouts.rebootSeconds = 30) });
    expect(run.result.error).toBeUndefined();
    for (const host of run.result.report.hosts) {
      expect(host).toMatchObject({ state: 'deployed', generation: 'new', effect: 'rebooted' });
      expect(host.note).toMatch(new RegExp(`^rebooted into ${FIXTURE_TOPLEVEL} in \\d+ s, new boot id$`));
    }
    const opi01 = deployStepsRun(run).filter((s) => s.startsWith('opi01 '));
    expect(opi01[0]).toBe('opi01 probe');
    expect(opi01.slice(-1)).toEqual(['opi01 health']);
    expect(opi01.filter((s) => !s.startsWith('opi01 health'))).toEqual(['opi01 probe', 'opi01 diff', 'opi01 rebuild', 'opi01 reboot', ...Array(4).fill('opi01 boot check')]);
  }, 30_000);

  it('a host that comes back on the old generation fails: named, what it booted against what was expected, its boot default set back; the rollout stops', async () => {
    const run = await runPipeline(
      [rebootAnswers, bootChecks({ opi03: [back(FIXTURE_TOPLEVEL)], opi01: [back(OLD)], opi02: [back(FIXTURE_TOPLEVEL)] })],
      { plan: { goal: 'boot', reboot: true, rolling: true }, editInventory: fast },
    );
    const message = run.result.error?.message ?? '';
    expect(message).toMatch(/^opi01: did not boot the new generation\n/);
    expect(message).toContain(`it booted ${OLD} instead of ${FIXTURE_TOPLEVEL} (back after 0 s)`);
    expect(message).toContain('not started: opi02');
    const rows = Object.fromEntries(run.result.report.hosts.map((h) => [h.name, h]));
    expect(rows.opi01).toMatchObject({ state: 'rolled-back', generation: 'previous' });
    expect(rows.opi01!.note).toMatch(/^rolled back: it booted .* instead of .*; its boot default is what it runs again$/);
    expect(rows.opi02).toMatchObject({ state: 'not-started' });
    expect(rows.opi03).toMatchObject({ state: 'deployed', effect: 'rebooted' });
    // The rollback (goal boot) ran on opi01: the profile and the boot default back to what it runs.
    const rollback = run.plan.deploy.hosts.opi01!.rollback!;
    expect(remoteWords(rollback.argv)).toContain('boot');
    expect(deployStepsRun(run)).toContain('opi01 rollback');
    expect(deployStepsRun(run).filter((s) => s.startsWith('opi02 '))).toEqual([]);
  }, 30_000);

  it('a host that never comes back within the bound fails with what is known; nothing more is tried on it', async () => {
    const run = await runPipeline([rebootAnswers, bootChecks({ opi03: ['down'] })], { plan: { goal: 'boot', reboot: true, rolling: true }, editInventory: fast });
    expect(run.result.error?.message).toMatch(new RegExp(`^opi03: did not come back within \\d+ s after its reboot into ${FIXTURE_TOPLEVEL}`));
    const opi03 = run.result.report.hosts.find((h) => h.name === 'opi03')!;
    expect(opi03).toMatchObject({ state: 'failed', generation: 'unknown' });
    expect(opi03.note).toMatch(/^did not come back within \d+ s of its reboot \(last: no answer over SSH: ssh: connect to host opi port 22: Connection refused\); nothing more could be done/);
    expect(deployStepsRun(run)).not.toContain('opi03 rollback');
    expect(run.result.report.hosts.filter((h) => h.state === 'not-started').map((h) => h.name)).toEqual(['opi01', 'opi02']);
  }, 30_000);

  it('a reboot that could not be asked for (no marker left) fails without waiting, and sets the boot default back', async () => {
    const refused = when(['avalanche-reboot'], { exitCode: 1, stderr: 'sudo: a password is required' });
    const run = await runPipeline([refused], { plan: { goal: 'boot', reboot: true, rolling: true }, editInventory: fast });
    expect(run.result.error?.message).toMatch(/^opi03: cannot reboot it: ssh exited with 1/);
    expect(deployStepsRun(run).filter((s) => s.endsWith(' boot check'))).toEqual([]);
    expect(deployStepsRun(run)).toContain('opi03 rollback');
  }, 30_000);
});
