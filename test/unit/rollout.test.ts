import { describe, expect, it } from 'vitest';
import { StageError } from '../../lib/errors.ts';
import type { CommandSpec } from '../../lib/exec/types.ts';
import { planDeploy, type PlanOptions } from '../../lib/plan/assemble.ts';
import { fillCommand, PLACEHOLDER, previousGenerationValues } from '../../lib/plan/placeholders.ts';
import type { PlannedCommand } from '../../lib/plan/types.ts';
import { renderReport } from '../../lib/report/render/text.ts';
import type { RunReport } from '../../lib/report/report.ts';
import { DeployLock } from '../../lib/run/lock.ts';
import { FIXTURE_TOPLEVEL, fleetInventory } from '../helpers/fixtures.ts';
import { asRun, deployStepsRun, FLEET_HOSTS, fleetLock, runPipeline, runPipelinePrinted } from '../helpers/pipeline.ts';
import { RecordingExecutor, remoteWords, type Responder, when } from '../helpers/recording-executor.ts';

const hosts = FLEET_HOSTS;

/** The run, and each deploy step it ran as `<host> <step>`, the steps told by the hosts' plans. */
async function run(responders: Responder[], plan: Partial<PlanOptions> = {}, editInventory?: (json: any) => void) {
  const pipeline = await runPipeline(responders, { plan, ...(editInventory ? { editInventory } : {}) });
  return { ...pipeline, steps: deployStepsRun(pipeline) };
}

describe('planning rollouts', () => {
  const inventory = fleetInventory();
  it('rolls out the seed first, then waves of --batch-size', () => {
    const plan = planDeploy(inventory, hosts, { goal: 'switch', onCoordinator: true, rolling: true, batchSize: 1 });
    expect(plan.waves).toEqual([['opi03'], ['opi01'], ['opi02']]);
    expect(planDeploy(inventory, hosts, { goal: 'switch', onCoordinator: true, rolling: true, batchSize: 2 }).waves).toEqual([['opi03'], ['opi01', 'opi02']]);
  });

  it('gives the watchdog time for the health checks and the settle window by default', () => {
    // The shipped defaults: 3 retries of a 10 s round of checks, 2 s apart, then 5 s of settling.
    expect(planDeploy(inventory, hosts, { goal: 'switch', onCoordinator: true }).deploy.confirmTimeoutSeconds).toBe(5 + 4 * 12 + 10);
    const quick = fleetInventory((json) => (json.health = { retries: 0, timeoutSeconds: 2, intervalSeconds: 0, settleSeconds: 0 }));
    expect(planDeploy(quick, hosts, { goal: 'switch', onCoordinator: true }).deploy.confirmTimeoutSeconds).toBe(30);
    expect(planDeploy(inventory, hosts, { goal: 'switch', onCoordinator: true, confirmTimeoutSeconds: 7 }).deploy.confirmTimeoutSeconds).toBe(7);
  });

  it('arms the magic rollback only for goals that activate', () => {
    expect(planDeploy(inventory, hosts, { goal: 'switch', onCoordinator: true }).deploy.magicRollback).toBe(true);
    expect(planDeploy(inventory, hosts, { goal: 'test', onCoordinator: true }).deploy.magicRollback).toBe(true);
    expect(planDeploy(inventory, hosts, { goal: 'boot', onCoordinator: true }).deploy.magicRollback).toBe(false);
    expect(planDeploy(inventory, hosts, { goal: 'switch', onCoordinator: true, magicRollback: false }).deploy.magicRollback).toBe(false);
  });

  it('passes every value to the remote scripts as an argument; a new login over a fresh connection before the confirmation', () => {
    const plan = planDeploy(inventory, hosts, { goal: 'switch', onCoordinator: true, confirmTimeoutSeconds: 7 });
    const steps = plan.deploy.hosts.opi01!;
    expect(steps.probe.argv.at(-1)).toMatch(/ avalanche-probe \/nix\/var\/nix\/profiles\/system \/run\/current-system$/);
    const armed = filledStep(steps.arm, { profileLink: 'system-4-link', currentSystem: '/nix/store/a' });
    expect(armed.at(-1)).toMatch(/ avalanche-arm '/);
    // The last words the target's shell hands the arm script: every value one argument.
    expect(remoteWords(armed).slice(-9)).toEqual([
      '/nix/var/nix/profiles/system', '/run/current-system', 'system-4-link', '/nix/store/a', 'switch',
      '/var/lib/avalanche-deploy/rollbacks.log', '/var/lib/avalanche-deploy/canary-r1', '7', '3600',
    ]);
    const login = steps.freshLogin!.argv;
    expect(login).toEqual(expect.arrayContaining(['-o', 'ControlMaster=no', '-o', 'ControlPath=none']));
    expect(login.indexOf('ControlPath=none')).toBeLessThan(login.indexOf('deploy@opi01.internal'));
    // The confirmation itself goes over the run's connection: the new login proved what it must.
    expect(steps.confirm!.argv).not.toContain('ControlPath=none');
  });
});

/** A planned step's argv as it runs on a host that had generation `previous`, in run r1. */
function filledStep(command: PlannedCommand | undefined, previous: { profileLink: string; currentSystem: string }): string[] {
  return fillCommand(command!, { 'run-id': 'r1', 'ssh-control-dir': '/tmp/avalanche-ssh-r1', ...previousGenerationValues(previous) }).argv;
}

describe('privilege on the targets', () => {
  const prev = { profileLink: 'system-4-link', currentSystem: '/nix/store/a' };
  const remote = (argv: readonly string[]) => argv.at(-1)!;

  it('a non-root deploy user reaches root with sudo -n for the watchdog, the new login, the confirmation and the rollback, never for the probe', () => {
    const steps = planDeploy(fleetInventory(), hosts, { goal: 'switch', onCoordinator: true }).deploy.hosts.opi01!;
    expect(remote(filledStep(steps.arm, prev))).toMatch(/^sudo -n -- sh -c /);
    expect(remote(filledStep(steps.freshLogin, prev))).toBe('sudo -n -- true');
    expect(remote(filledStep(steps.confirm, prev))).toMatch(/^sudo -n -- sh -c /);
    expect(remote(filledStep(steps.rollback, prev))).toMatch(/^sudo -n -- sh -c /);
    expect(remote(filledStep(steps.probe, prev))).toMatch(/^sh -c /);
  });

  it('root needs no sudo', () => {
    const inventory = fleetInventory((json) => (json.hosts.opi01.deployUser = 'root'));
    const steps = planDeploy(inventory, hosts, { goal: 'switch', onCoordinator: true }).deploy.hosts.opi01!;
    expect(remote(filledStep(steps.arm, prev))).toMatch(/^sh -c /);
    expect(remote(filledStep(steps.rollback, prev))).toMatch(/^sh -c /);
  });
});

describe('connection reuse', () => {
  // On by default; the socket directory is the run's own (runPlan makes it).
  const reuse = `ControlPath=${PLACEHOLDER.sshControlDir}/%C`;
  const plan = planDeploy(fleetInventory(), hosts, { goal: 'switch', onCoordinator: true });

  it('multiplexes the many short commands per target, and closes the masters', () => {
    expect(plan.deploy.hosts.opi01!.probe.argv).toContain(reuse);
    expect(plan.preflight.targets[0]!.command.argv).toContain(reuse);
    expect(plan.deploy.hosts.opi01!.rebuild.env!.NIX_SSHOPTS).toContain(reuse);
    expect(Object.values(plan.deploy.hosts).map((h) => h.closeConnection!.argv.slice(-3))).toEqual([
      ['-O', 'exit', 'deploy@opi01.internal'],
      ['-O', 'exit', 'deploy@opi02.internal'],
      ['-O', 'exit', 'deploy@opi03.internal'],
    ]);
  });

  it("opens one connection per builder at its login, which the builds' ssh reuses, and closes it at the end", () => {
    // The preferred seed, and each builder beside it: the login in preflight makes the master.
    const builders = plan.builds[0]!.builders;
    for (const builder of builders) expect(builder.check.argv).toContain(reuse);
    // Nix's ssh for each remote build (head start and the rest) gets the same options through NIX_SSHOPTS.
    expect(plan.builds[0]!.headStart!.build.env!.NIX_SSHOPTS).toContain(reuse);
    expect(plan.builds[0]!.build.env!.NIX_SSHOPTS).toContain(reuse);
    expect(builders.map((b) => b.closeConnection!.argv.slice(-3))).toEqual(builders.map((b) => ['-O', 'exit', `nix-builder@${b.host}.internal`]));
    // A builder whose --builders entry pins its host key: Nix checks it only on a connection of its own (the key
    // file Nix adds comes after NIX_SSHOPTS), so the login does not open the master; the first build's ssh does.
    const pinned = planDeploy(fleetInventory((json) => (json.hosts.opi01.builder.hostKey = 'c3NoLWVkMjU1MTkgQUFBQQ==')), hosts, { goal: 'switch', onCoordinator: true }).builds[0]!;
    const opi01 = pinned.builders.find((b) => b.host === 'opi01')!;
    expect([opi01.check.argv.includes(reuse), opi01.closeConnection !== undefined, pinned.build.env!.NIX_SSHOPTS!.includes(reuse)]).toEqual([false, true, true]);
    expect(pinned.builders.find((b) => b.host === 'opi02')!.check.argv).toContain(reuse);
    // …unless the inventory names its own known_hosts file, which wins over Nix's there too.
    const own = planDeploy(
      fleetInventory((json) => {
        json.hosts.opi01.builder.hostKey = 'c3NoLWVkMjU1MTkgQUFBQQ==';
        json.ssh.options.push('-o', 'UserKnownHostsFile=/etc/ssh/fleet_known_hosts');
      }),
      hosts,
      { goal: 'switch', onCoordinator: true },
    ).builds[0]!;
    expect(own.builders.find((b) => b.host === 'opi01')!.check.argv).toContain(reuse);
    // Without reuse (tests, the doctor's way), neither.
    const unshared = planDeploy(fleetInventory(), hosts, { goal: 'switch', onCoordinator: true, reuseConnections: false }).builds[0]!;
    expect(unshared.build.env!.NIX_SSHOPTS).not.toContain('ControlPath');
    expect(unshared.builders.every((b) => !b.check.argv.includes(reuse) && b.closeConnection === undefined)).toBe(true);
  });

  it('logs in over a fresh connection before confirming', () => {
    // ssh keeps the first value of an option: ControlMaster=no must come before the reuse options.
    const login = plan.deploy.hosts.opi01!.freshLogin!.argv;
    expect(login.indexOf('ControlMaster=no')).toBeLessThan(login.indexOf('ControlMaster=auto'));
    expect(login.indexOf('ControlPath=none')).toBeLessThan(login.indexOf(reuse));
  });

  it('keeps the new login fresh even when the inventory multiplexes', () => {
    const inventory = fleetInventory((json) => json.ssh.options.push('-o', 'ControlMaster=auto', '-o', 'ControlPath=/run/x/%C'));
    const login = planDeploy(inventory, hosts, { goal: 'switch', onCoordinator: true, reuseConnections: false }).deploy.hosts.opi01!.freshLogin!.argv;
    expect(login.indexOf('ControlMaster=no')).toBeLessThan(login.indexOf('ControlMaster=auto'));
  });
});

describe('safe rollouts (recording executor)', () => {
  it('probes, arms, rebuilds, logs in anew beside the checks, confirms each host', async () => {
    const { result, steps } = await run([]);
    expect(result.error).toBeUndefined();
    expect(steps.filter((s) => s.startsWith('opi03'))).toEqual(['opi03 probe', 'opi03 diff', 'opi03 arm', 'opi03 rebuild', 'opi03 fresh login', 'opi03 health', 'opi03 confirm']);
    expect(result.report.hosts.every((h) => h.state === 'deployed' && h.generation === 'new')).toBe(true);
  });

  it('stops a rolling deploy at the first failure and rolls that host back', async () => {
    const { result, steps } = await run([when(['--flake', '.#opi01'], { exitCode: 1, stderr: 'switch-to-configuration failed' })], {
      rolling: true,
    });
    expect(steps).toEqual([
      'opi03 probe', 'opi03 diff', 'opi03 arm', 'opi03 rebuild', 'opi03 fresh login', 'opi03 health', 'opi03 confirm',
      'opi01 probe', 'opi01 diff', 'opi01 arm', 'opi01 rebuild', 'opi01 rollback',
    ]);
    expect(result.error!.message).toContain('not started: opi02');
    expect(result.report.hosts.map((h) => [h.name, h.state, h.generation])).toEqual([
      ['opi01', 'rolled-back', 'previous'],
      ['opi02', 'not-started', 'previous'],
      ['opi03', 'deployed', 'new'],
    ]);
  });

  it('--keep-going deploys the later waves and fails at the end', async () => {
    const { result, steps } = await run([when(['--flake', '.#opi01'], { exitCode: 1 })], { rolling: true, keepGoing: true });
    expect(steps).toContain('opi02 confirm');
    expect(result.error).toBeInstanceOf(StageError);
    expect(result.report.hosts.map((h) => h.state)).toEqual(['rolled-back', 'deployed', 'deployed']);
  });

  it('rolls back a host whose health check fails', async () => {
    const { result, steps } = await run([when(['/run/booted-fine'], { exitCode: 1, stderr: 'no' })], {}, (json) => {
      json.hosts.opi02.health = { commands: [['test', '-e', '/run/booted-fine']] };
    });
    const round = 'opi02 health';
    expect(steps.filter((s) => s.startsWith('opi02 '))).toEqual(['opi02 probe', 'opi02 diff', 'opi02 arm', 'opi02 rebuild', 'opi02 fresh login', round, round, 'opi02 rollback']);
    expect(result.error!.message).toContain('opi02: health check failed after 2 attempt(s): command: test -e /run/booted-fine');
    expect(result.report.hosts.find((h) => h.name === 'opi02')).toMatchObject({ state: 'rolled-back', generation: 'previous', note: 'rolled back: health check failed' });
  });

  it('says when a host could not be confirmed: its watchdog reverts it', async () => {
    const { result } = await run([when(['avalanche-confirm', 'deploy@opi02.internal'], { exitCode: 255, stderr: 'ssh: connect to host opi02.internal port 22: Connection timed out' })]);
    const opi02 = result.report.hosts.find((h) => h.name === 'opi02')!;
    expect(opi02).toMatchObject({ state: 'failed', generation: 'unknown' });
    expect(opi02.note).toMatch(/not confirmed .*Connection timed out.*watchdog on opi02 reverts it within 30 s/);
  });

  it('confirms a host whose new login is refused once, right after its activation, then answers', async () => {
    let refusals = 0;
    const once = (spec: CommandSpec) => (spec.argv.includes('ControlPath=none') && spec.argv.includes('deploy@opi02.internal') && refusals++ === 0 ? { exitCode: 255, stderr: 'Connection refused' } : undefined);
    const { result, steps } = await run([once]);
    expect(result.report.hosts.find((h) => h.name === 'opi02')).toMatchObject({ state: 'deployed', generation: 'new' });
    expect(steps.filter((s) => s === 'opi02 fresh login')).toHaveLength(2);
  });

  it('does not confirm a host that a new SSH login no longer reaches after its activation (retried as a check): its watchdog reverts it', async () => {
    const refused = { exitCode: 255, stderr: 'deploy@opi02.internal: Permission denied (publickey).' };
    const { result, steps } = await run([(spec) => (spec.argv.includes('ControlPath=none') && spec.argv.includes('deploy@opi02.internal') ? refused : undefined)]);
    // Tried 1 + retries (1) times, beside the checks.
    expect(steps.filter((s) => s.startsWith('opi02 ')).sort()).toEqual(['opi02 arm', 'opi02 diff', 'opi02 fresh login', 'opi02 fresh login', 'opi02 health', 'opi02 probe', 'opi02 rebuild']);
    expect(result.error!.message).toMatch(/^opi02: could not log in over a new SSH connection after the activation, so it is not confirmed: ssh exited with 255/);
    const opi02 = result.report.hosts.find((h) => h.name === 'opi02')!;
    expect(opi02).toMatchObject({ state: 'failed', generation: 'unknown' });
    expect(opi02.note).toMatch(/^not confirmed: a new SSH login failed \(deploy@opi02.internal: Permission denied \(publickey\)\.\); the magic-rollback watchdog on opi02 reverts it within 30 s/);
    expect(result.report.hosts.find((h) => h.name === 'opi01')).toMatchObject({ state: 'deployed' });
  });

  it('holds the health checks for the settle window: a unit that dies seconds later is rolled back', async () => {
    let asked = 0;
    const dies = (spec: CommandSpec) => (spec.argv.join(' ').includes('lab-app.service') && spec.argv.join(' ').includes('deploy@opi02') ? { exitCode: ++asked > 1 ? 3 : 0, stdout: asked > 1 ? 'failed' : 'active' } : undefined);
    const { result, steps } = await run([dies], {}, (json) => {
      json.health = { systemState: 'skip', units: [], retries: 0, intervalSeconds: 0, settleSeconds: 1 };
      json.hosts.opi02.health = { units: ['lab-app.service'] };
    });
    expect(steps.filter((s) => s.startsWith('opi02 ')).at(-1)).toBe('opi02 rollback');
    expect(result.error!.message).toMatch(/opi02: health check failed \d+ s after activation, within the 1 s settle window: units active: lab-app.service/);
    expect(result.report.hosts.find((h) => h.name === 'opi02')).toMatchObject({ state: 'rolled-back', generation: 'previous', note: 'rolled back: health check failed in the settle window' });
    expect(result.report.hosts.find((h) => h.name === 'opi01')).toMatchObject({ state: 'deployed' });
  });

  it('a nixos-rebuild that changed nothing: the rollback succeeds with nothing to restore, and the host is on its previous generation', async () => {
    const { result } = await run([
      when(['--flake', '.#opi01'], { exitCode: 1, stderr: 'error: building the system configuration failed' }),
      when(['avalanche-rollback', 'deploy@opi01.internal'], { stdout: 'outcome=unchanged\nprofile-link=system-4-link\nprofile-path=/nix/store/old-system\ncurrent-system=/nix/store/old-system\n' }),
    ]);
    expect(result.report.hosts.find((h) => h.name === 'opi01')).toMatchObject({
      state: 'rolled-back',
      generation: 'previous',
      note: 'rolled back: nixos-rebuild failed (nothing had changed on the host)',
    });
  });

  it('credits the watchdog, with the time, when it had reverted the host before the deploy\'s rollback reached it', async () => {
    const { result } = await run([
      when(['/run/booted-fine'], { exitCode: 1 }),
      when(['avalanche-rollback', 'deploy@opi02.internal'], { stdout: 'outcome=unchanged\nwatchdog-at=1700000100\nprofile-link=system-4-link\nprofile-path=/nix/store/old-system\ncurrent-system=/nix/store/old-system\n' }),
    ], {}, (json) => (json.hosts.opi02.health = { commands: [['test', '-e', '/run/booted-fine']] }));
    const opi02 = result.report.hosts.find((h) => h.name === 'opi02')!;
    expect(opi02).toMatchObject({ state: 'rolled-back', generation: 'previous' });
    expect(opi02.note).toBe('health check failed; rolled back by the magic-rollback watchdog on opi02 at 2023-11-14T22:15:00.000Z, before the deploy\'s own rollback reached it');
  });

  it('reports the generation the rollback read, not the one hoped for', async () => {
    const { result } = await run([
      when(['--flake', '.#opi01'], { exitCode: 4 }),
      when(['avalanche-rollback', 'deploy@opi01.internal'], { exitCode: 1, stderr: 'switch-to-configuration: failed', stdout: 'profile-link=system-4-link\nprofile-path=/nix/store/old-system\ncurrent-system=/nix/store/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn-fixture-toplevel\n' }),
    ], { magicRollback: false });
    expect(result.report.hosts.find((h) => h.name === 'opi01')).toMatchObject({ state: 'failed', generation: 'new' });
    expect(result.report.hosts.find((h) => h.name === 'opi01')!.note).toMatch(/rollback over SSH failed \(switch-to-configuration: failed\); it is on its new generation/);
  });

  it('a confirmation that comes too late reads the host: rolled back by the watchdog, or not', async () => {
    const late = (stdout: string) => when(['avalanche-confirm', 'deploy@opi02.internal'], { exitCode: 3, stdout });
    const reverted = await run([late('watchdog-at=1700000100\nprofile-link=system-4-link\nprofile-path=/nix/store/old-system\ncurrent-system=/nix/store/old-system\n')]);
    expect(reverted.result.report.hosts.find((h) => h.name === 'opi02')).toMatchObject({
      state: 'rolled-back',
      generation: 'previous',
      note: 'confirmation came too late: the watchdog rolled it back at 2023-11-14T22:15:00.000Z',
    });
    const gaveUp = await run([late('profile-link=system-5-link\nprofile-path=/nix/store/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn-fixture-toplevel\ncurrent-system=/nix/store/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn-fixture-toplevel\n')]);
    expect(gaveUp.result.report.hosts.find((h) => h.name === 'opi02')).toMatchObject({ state: 'failed', generation: 'new' });
  });

  it('fails over to another builder when the seed does not answer, and says so', async () => {
    const pipeline = await run([when(['nix-builder@opi03.internal'], { exitCode: 255, stderr: 'Connection refused' })]);
    const { result, executor, plan } = pipeline;
    expect(result.error).toBeUndefined();
    expect(result.report.seed).toBe('opi01');
    expect(result.report.seedFailover).toBe('seed opi03 did not answer (Connection refused); opi01 builds instead');
    // The first build that ran (the head start) is on the new seed alone; the build of all names the builders that
    // answered, opi01 first; opi03 is left out of both.
    const [headStart, all] = executor.calls.filter((c) => c.argv.includes('build'));
    const spec = (h: string) => `ssh://nix-builder@${h}.internal aarch64-linux /etc/nix/builder-key 6 2 big-parallel - -`;
    expect(headStart).toEqual(asRun(pipeline, plan.builds[0]!.headStart!.build));
    expect(headStart!.argv[headStart!.argv.indexOf('--builders') + 1]).toBe(spec('opi01'));
    expect(all).toEqual(asRun(pipeline, plan.builds[0]!.build));
    expect(all!.argv[all!.argv.indexOf('--builders') + 1]).toBe(['opi01', 'opi02'].map(spec).join(' ; '));
  });
});

describe('what each goal did on each host, as the report says it', () => {
  /** The report's outcome column for each host, as the terminal shows it. */
  const outcomes = (report: RunReport) => {
    const lines = renderReport(report).split('\n');
    return Object.fromEntries(report.hosts.map((h) => [h.name, lines.find((line) => line.startsWith(`  ${h.name} `))!.replace(/^ {2}\S+\s+\S+\s+/, '')]));
  };
  /** What a target answers the generation probe with: profile link, profile path, running system. */
  const probe = (host: string, link: string, profilePath: string, running: string) =>
    when(['avalanche-probe', `deploy@${host}.internal`], { stdout: `${link}\n${profilePath}\n${running}\n` });

  it.each([
    ['switch', 'switched', 'new', 'switched (new generation, boot default)'],
    ['boot', 'boot-default', 'new', 'boot default set (runs the old one until reboot)'],
    ['test', 'activated', 'new', 'activated until reboot (boot default unchanged)'],
    ['dry-activate', 'checked', 'previous', 'checked (nothing changed)'],
  ] as const)('--goal %s: %s', async (goal, effect, generation, words) => {
    const { result } = await run([], { goal });
    expect(result.error).toBeUndefined();
    const stored = JSON.parse(JSON.stringify(result.report)) as RunReport;
    expect(stored.hosts.map((h) => [h.state, h.generation, h.effect, h.firstDeploy])).toEqual(hosts.map(() => ['deployed', generation, effect, undefined]));
    expect(Object.values(outcomes(result.report))).toEqual(hosts.map(() => words));
  });

  it('a host that already ran the new toplevel, and had it as its profile, is unchanged (whatever the goal but dry-activate)', async () => {
    const same = probe('opi02', 'system-5-link', FIXTURE_TOPLEVEL, FIXTURE_TOPLEVEL);
    // Running it but not booting it, or the other way round, is not unchanged.
    const runningOnly = probe('opi01', 'system-4-link', '/nix/store/old-system', FIXTURE_TOPLEVEL);
    for (const goal of ['switch', 'boot', 'test'] as const) {
      const { result } = await run([same, runningOnly], { goal });
      expect(result.report.hosts.find((h) => h.name === 'opi02')!.effect).toBe('unchanged');
      expect(outcomes(result.report).opi02).toBe('unchanged (already ran this toplevel)');
      expect(result.report.hosts.find((h) => h.name === 'opi01')!.effect).not.toBe('unchanged');
    }
    const dry = await run([same], { goal: 'dry-activate' });
    expect(outcomes(dry.result.report).opi02).toBe('checked (nothing changed)');
  });

  it('a host with no system profile yet is a first deploy, not one with a previous generation', async () => {
    // readlink of a missing profile prints nothing; readlink -f prints the path itself.
    const none = (host: string) => probe(host, '', '/nix/var/nix/profiles/system', '/nix/store/installer-system');
    const { result } = await run([none('opi02')]);
    expect(result.report.hosts.map((h) => [h.name, h.firstDeploy ?? false])).toEqual([['opi01', false], ['opi02', true], ['opi03', false]]);
    expect(outcomes(result.report).opi02).toBe('switched (new generation, boot default; first deploy)');
    expect(JSON.parse(JSON.stringify(result.report)).hosts[1]).toMatchObject({ name: 'opi02', state: 'deployed', effect: 'switched', firstDeploy: true });
  });

  it('a first deploy rolled back: "first deploy", and the note says the profile it made stays (there was none to go back to)', async () => {
    const none = probe('opi01', '', '/nix/var/nix/profiles/system', '/nix/store/installer-system');
    const failed = when(['--flake', '.#opi01'], { exitCode: 1, stderr: 'switch-to-configuration failed' });
    // Activation failed before switching: nothing changed at all.
    const untouched = await run([none, failed, when(['avalanche-rollback', 'deploy@opi01.internal'], { stdout: 'outcome=unchanged\nprofile-link=\nprofile-path=/nix/var/nix/profiles/system\ncurrent-system=/nix/store/installer-system\n' })]);
    expect(untouched.result.report.hosts[0]).toMatchObject({ state: 'rolled-back', generation: 'previous', firstDeploy: true, note: 'rolled back: nixos-rebuild failed (nothing had changed on the host)' });
    expect(outcomes(untouched.result.report).opi01).toBe('rolled-back (first deploy)');
    // nixos-rebuild had set the profile: the rollback cannot take a profile link away that the host never had.
    const kept = await run([none, failed, when(['avalanche-rollback', 'deploy@opi01.internal'], { stdout: `outcome=unchanged\nprofile-link=system-1-link\nprofile-path=${FIXTURE_TOPLEVEL}\ncurrent-system=/nix/store/installer-system\n` })]);
    const opi01 = kept.result.report.hosts[0]!;
    expect(opi01.note).toBe(`rolled back: nixos-rebuild failed; first deploy: there was no system profile to go back to, so the profile stays system-1-link (${FIXTURE_TOPLEVEL})`);
    expect(outcomes(kept.result.report).opi01).toBe('rolled-back (first deploy, new generation)');
  });
});

describe('what the operator sees of a host\'s nixos-rebuild (the plain renderer, as in CI)', () => {
  const copyZero = 'copying 0 paths...';
  const buildJson = `[{"drvPath":"/nix/store/1vywq121qhh8y6hakaxa5n96fvvznv3k-fixture-toplevel.drv","outputs":{"out":"${FIXTURE_TOPLEVEL}"}}]`;
  const noTty = 'Pseudo-terminal will not be allocated because stdin is not a terminal.\r';
  const rebuildLines = ['building the system configuration...', copyZero, buildJson, `copying path '${FIXTURE_TOPLEVEL}' from 'http://hawk.internal:5000'...`, copyZero, noTty, noTty];

  it('leaves out "copying 0 paths", nix build\'s JSON result and ssh\'s pseudo-terminal notice, keeps the rest', async () => {
    const { result, output } = await runPipelinePrinted([when(['--flake', '.#opi02'], { lines: rebuildLines })]);
    expect(result.error).toBeUndefined();
    expect(output).toContain('opi02: building the system configuration...');
    expect(output).toContain(`opi02: copying path '${FIXTURE_TOPLEVEL}' from 'http://hawk.internal:5000'...`);
    expect(output).not.toContain('copying 0 paths');
    expect(output).not.toContain('"drvPath"');
    expect(output).not.toContain('Pseudo-terminal');
  });

  it('and out of a failure\'s output tail', async () => {
    const stderr = [...rebuildLines, 'error: switch-to-configuration failed'].join('\n');
    const { result } = await runPipelinePrinted([when(['--flake', '.#opi02'], { exitCode: 1, lines: rebuildLines, stderr, stdout: `${buildJson}\n` })]);
    const message = result.error!.message;
    expect(message).toMatch(/opi02 failed: nixos-rebuild exited with 1\n.*\n {2}\| building the system configuration\.\.\.\n {2}\| copying path .*\n {2}\| error: switch-to-configuration failed\n/);
    expect(message).not.toContain('copying 0 paths');
    expect(message).not.toContain('"drvPath"');
    expect(message).not.toContain('Pseudo-terminal');
  });
});

describe('deploy lock', () => {
  const inventory = fleetInventory();
  const here = fleetLock();
  const holder = JSON.stringify({ id: 'x', user: 'ci', host: 'runner-7', pid: 42, startedAt: new Date().toISOString(), command: 'deploy-all --rolling' });

  it('takes the lock atomically on the coordinator and releases only its own', async () => {
    const executor = new RecordingExecutor();
    const planned = fleetLock({ onCoordinator: false });
    const lock = await DeployLock.acquire({ ...planned, executor, command: 'deploy opi01', forceUnlock: false });
    await lock.release();
    // What ran is the plan's acquire with this run's holder, then its release with the holder's id.
    const [acquire, release] = [planned.lock.acquire, planned.lock.release];
    expect(executor.calls).toEqual([
      fillCommand(acquire, { 'lock-holder': JSON.stringify(lock.holder) }),
      fillCommand(release, { 'lock-holder-id': lock.holder.id }),
    ]);
    expect(acquire.argv.slice(-3, -1)).toEqual(['root@hawk.internal', '--']);
    expect(acquire.argv.at(-1)).toMatch(/set -C/);
    expect(executor.calls[1]!.argv.at(-1)).toContain(lock.holder.id);
  });

  it('refuses when another run holds it, naming the holder', async () => {
    const executor = new RecordingExecutor([when(['avalanche-lock'], { exitCode: 75, stdout: holder })]);
    const taking = DeployLock.acquire({ ...here, executor, command: 'deploy opi01', forceUnlock: false });
    await expect(taking).rejects.toThrow('deploy lock /var/lib/avalanche-deploy/deploy.lock is held by ci@runner-7 (pid 42) since');
    await expect(taking).rejects.toThrow(/deploy-all --rolling/);
  });

  it('a lock path that cannot be created is reported as that, not as held (real sh)', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { ZxExecutor } = await import('../../lib/exec/zx-executor.ts');
    const dir = await mkdtemp(`${tmpdir()}/lock-`);
    await writeFile(`${dir}/file`, '');
    const blocked = fleetLock({ inventory: fleetInventory((json) => (json.paths = { lock: `${dir}/file/deploy.lock` })) });
    const taking = DeployLock.acquire({ ...blocked, executor: new ZxExecutor(), command: 'deploy', forceUnlock: false });
    await expect(taking).rejects.toThrow(new RegExp(`^cannot create the deploy lock ${dir}/file/deploy.lock on this machine: mkdir: cannot create directory`));
    const free = fleetLock({ inventory: fleetInventory((json) => (json.paths = { lock: `${dir}/locks/deploy.lock` })) });
    const lock = await DeployLock.acquire({ ...free, executor: new ZxExecutor(), command: 'deploy', forceUnlock: false });
    await expect(DeployLock.acquire({ ...free, executor: new ZxExecutor(), command: 'again', forceUnlock: false })).rejects.toThrow(/is held by .* \(pid \d+\)/);
    await lock.release();
  });

  it('removes a stale lock only while it is still that holder\'s, so two runs taking it over cannot both win', async () => {
    let held = true;
    const { hostname } = await import('node:os');
    const dead = JSON.stringify({ ...JSON.parse(holder), id: 'stale-run-7', host: hostname() });
    const executor = new RecordingExecutor([
      (spec) => (spec.argv.join(' ').includes('set -C') && held ? ((held = false), { exitCode: 75, stdout: dead }) : undefined),
    ]);
    const lock = await DeployLock.acquire({ ...here, executor, command: 'deploy', forceUnlock: false, isAlive: () => false });
    // Refused once, the stale holder's lock released by its id (the plan's release), taken.
    const taken = fillCommand(here.lock.acquire, { 'lock-holder': JSON.stringify(lock.holder) });
    expect(executor.calls).toEqual([taken, fillCommand(here.lock.release, { 'lock-holder-id': 'stale-run-7' }), taken]);
    const removal = executor.calls[1]!.argv;
    expect(removal.slice(-2)).toEqual([inventory.paths.lock, 'stale-run-7']);
    expect(removal.join(' ')).toContain('grep -qF -- "$2" "$1"');
  });

  it('takes over a lock whose run is gone', async () => {
    let held = true;
    const { hostname } = await import('node:os');
    const dead = JSON.stringify({ ...JSON.parse(holder), host: hostname() });
    const executor = new RecordingExecutor([
      (spec) => (spec.argv.join(' ').includes('set -C') && held ? ((held = false), { exitCode: 75, stdout: dead }) : undefined),
    ]);
    const lock = await DeployLock.acquire({ ...here, executor, command: 'deploy', forceUnlock: false, isAlive: () => false });
    expect(lock.note).toBe(`took over a stale deploy lock (pid 42 on ${hostname()} is gone)`);
  });
});
