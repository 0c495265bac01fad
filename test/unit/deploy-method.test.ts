import { describe, expect, it } from 'vitest';
import { nixosRebuildCheck } from '../../lib/doctor/checks/nixos-rebuild.ts';
import { createDoctorContext } from '../../lib/doctor/context.ts';
import { chooseDeployMethod } from '../../lib/nix/deploy-method.ts';
import { parseRebuildHelp, type RebuildTool, unprobedRebuildTool } from '../../lib/nix/nixos-rebuild.ts';
import { planDeploy } from '../../lib/plan/assemble.ts';
import { renderPlan } from '../../lib/plan/render.ts';
import { ACTIVATE_TOPLEVEL, NOT_ARMED, PROFILE_NOT_SET } from '../../lib/remote/scripts.ts';
import { fixture, fleetInventory, wholeFleetInventory } from '../helpers/fixtures.ts';
import { deployStepsRun, FLEET_HOSTS, runPipeline, WHOLE_FLEET_HOSTS } from '../helpers/pipeline.ts';
import { RecordingExecutor, type Responder, remoteWords, when } from '../helpers/recording-executor.ts';

const bash = parseRebuildHelp(['nixos-rebuild'], fixture('nixos-rebuild/bash-era.help'));
const ng = parseRebuildHelp(['nixos-rebuild'], fixture('nixos-rebuild/ng.help'));
const missing: RebuildTool = { command: ['nixos-rebuild'], found: false, flavour: 'unknown', flags: [], error: 'spawn nixos-rebuild ENOENT' };
/** An ng from before --store-path. */
const olderNg: RebuildTool = { ...ng, flags: ng.flags.filter((f) => f !== '--store-path') };
/** The inventory's own choice; `undefined`: none (the default, chosen by the probe). */
const withMethod = (method: 'nixos-rebuild' | 'direct' | undefined) =>
  fleetInventory((json) => (method === undefined ? delete json.deploy : (json.deploy = { method })));

describe('the deploy method: from the inventory and what the probe found', () => {
  it('by default: nixos-rebuild --store-path where it takes it, else direct (bash-era, an older ng, an unidentified or missing tool)', () => {
    expect(chooseDeployMethod(ng)).toMatchObject({ kind: 'store-path', evaluatesAgain: false, why: 'probed: nixos-rebuild: nixos-rebuild-ng accepts --store-path: it deploys the built toplevel, no evaluation' });
    expect(chooseDeployMethod(ng).requested).toBeUndefined();
    for (const tool of [bash, olderNg, unprobedRebuildTool(['nixos-rebuild']), missing]) {
      expect(chooseDeployMethod(tool)).toMatchObject({ kind: 'direct', evaluatesAgain: false });
    }
    expect(chooseDeployMethod(bash).why).toBe(
      'probed: nixos-rebuild: bash-era nixos-rebuild has no --store-path: the orchestrator copies the closure, sets the system profile and activates (nothing evaluated again)',
    );
    expect(chooseDeployMethod(missing).why).toMatch(/^probed: nixos-rebuild: not found: the orchestrator copies/);
  });

  it('deploy.method direct is direct whatever the tool; nixos-rebuild without --store-path keeps --flake and says it evaluates again', () => {
    expect(chooseDeployMethod(ng, 'direct')).toMatchObject({ kind: 'direct', requested: 'direct' });
    expect(chooseDeployMethod(ng, 'nixos-rebuild')).toMatchObject({ kind: 'store-path', requested: 'nixos-rebuild' });
    expect(chooseDeployMethod(bash, 'nixos-rebuild')).toMatchObject({
      kind: 'flake',
      requested: 'nixos-rebuild',
      evaluatesAgain: true,
      why: "deploy.method is nixos-rebuild and nixos-rebuild: bash-era nixos-rebuild has no --store-path: --flake, so each host's configuration is evaluated again",
    });
    // Asked for and missing: it stays nixos-rebuild, so that preflight fails on it rather than deploying otherwise.
    expect(chooseDeployMethod(missing, 'nixos-rebuild')).toMatchObject({ kind: 'flake' });
  });

  it('the inventory refuses a method it does not know', () => {
    expect(() => fleetInventory((json) => (json.deploy = { method: 'colmena' }))).toThrow(/deploy\.method/);
  });
});

describe('planning each method', () => {
  it('store-path: nixos-rebuild gets the built toplevel (filled after evaluation), no --flake', () => {
    const plan = planDeploy(withMethod(undefined), FLEET_HOSTS, { goal: 'switch', onCoordinator: true, rebuildTool: ng });
    expect(plan.deployMethod?.kind).toBe('store-path');
    expect(plan.deploy.hosts.opi01!.rebuild.argv).toEqual([
      'nixos-rebuild', 'switch', '--store-path', '{{toplevel:opi01}}', '--target-host', 'deploy@opi01.internal', '--use-substitutes', '--sudo', '--no-reexec',
    ]);
    expect(plan.deploy.hosts.opi01!.copy).toBeUndefined();
    expect(plan.deploy.hosts.opi01!.setProfile).toBeUndefined();
    expect(plan.preflight.rebuild).toMatchObject({ tool: ng, problems: [] });
  });

  it('direct: copy with substitution on the target, the profile and the activation as root behind sudo -n; no nixos-rebuild, so none in preflight', () => {
    const plan = planDeploy(withMethod(undefined), FLEET_HOSTS, { goal: 'switch', onCoordinator: true, rebuildTool: bash });
    expect(plan.deployMethod).toMatchObject({ kind: 'direct' });
    expect(plan.preflight.rebuild).toBeUndefined();
    const opi01 = plan.deploy.hosts.opi01!;
    expect(opi01.copy).toEqual({
      argv: ['nix', 'copy', '--substitute-on-destination', '--to', 'ssh://deploy@opi01.internal', '{{toplevel:opi01}}'],
      env: { NIX_SSHOPTS: expect.stringContaining('ControlPath={{ssh-control-dir}}/%C') },
      timeoutMs: 60 * 60_000,
    });
    // The profile is set by the arm step once the watchdog is armed: one round trip.
    expect([opi01.setProfile, opi01.armSetsProfile]).toEqual([undefined, true]);
    expect(remoteWords(opi01.rebuild.argv)).toEqual(['sudo', '-n', '--', 'sh', '-c', ACTIVATE_TOPLEVEL, 'avalanche-activate', '{{toplevel:opi01}}', 'switch']);
    expect(opi01.rebuild.env).toBeUndefined();
    // The watchdog, health checks, confirmation and rollback are the same as with nixos-rebuild; the arm step only
    // differs by the profile and toplevel it then sets (ARM's first two arguments, empty there).
    const viaRebuild = planDeploy(withMethod(undefined), FLEET_HOSTS, { goal: 'switch', onCoordinator: true, rebuildTool: ng }).deploy.hosts.opi01!;
    for (const step of ['probe', 'health', 'freshLogin', 'confirm', 'rollback', 'closeConnection'] as const) expect(opi01[step]).toEqual(viaRebuild[step]);
    const armWords = (host: typeof opi01) => remoteWords(host.arm!.argv);
    const at = armWords(opi01).indexOf('avalanche-arm') + 1;
    expect(armWords(opi01).slice(at, at + 2)).toEqual(['/nix/var/nix/profiles/system', '{{toplevel:opi01}}']);
    expect(armWords(viaRebuild).slice(at, at + 2)).toEqual(['', '']);
    expect([...armWords(opi01).slice(0, at), ...armWords(opi01).slice(at + 2)]).toEqual([...armWords(viaRebuild).slice(0, at), ...armWords(viaRebuild).slice(at + 2)]);
    // Without a watchdog (--no-magic-rollback) the profile is a step of its own.
    const unarmed = planDeploy(withMethod(undefined), FLEET_HOSTS, { goal: 'switch', onCoordinator: true, rebuildTool: bash, magicRollback: false }).deploy.hosts.opi01!;
    expect([unarmed.arm, unarmed.armSetsProfile]).toEqual([undefined, undefined]);
    expect(unarmed.setProfile!.argv.slice(0, -1)).toEqual(unarmed.probe.argv.slice(0, -1));
    expect(remoteWords(unarmed.setProfile!.argv)).toEqual(['sudo', '-n', '--', 'nix-env', '-p', '/nix/var/nix/profiles/system', '--set', '{{toplevel:opi01}}']);
  });

  it('direct: goal test and dry-activate leave the profile alone; boot sets it', () => {
    const hostFor = (goal: 'test' | 'dry-activate' | 'boot') =>
      planDeploy(withMethod('direct'), ['opi01'], { goal, onCoordinator: true, rebuildTool: ng }).deploy.hosts.opi01!;
    expect([hostFor('test').setProfile, hostFor('test').armSetsProfile]).toEqual([undefined, undefined]);
    expect([hostFor('dry-activate').setProfile, hostFor('dry-activate').armSetsProfile]).toEqual([undefined, undefined]);
    // boot activates nothing, so no watchdog: the profile is a step of its own.
    expect(remoteWords(hostFor('boot').setProfile!.argv)).toContain('--set');
    expect(remoteWords(hostFor('boot').rebuild.argv).slice(-2)).toEqual(['{{toplevel:opi01}}', 'boot']);
  });

  it('direct, the machine the run is on: no copy (the closure is here), the profile and activation here behind sudo -n, no ssh', () => {
    const whole = wholeFleetInventory((json) => (json.deploy = { method: 'direct' }));
    const plan = planDeploy(whole, WHOLE_FLEET_HOSTS, { goal: 'switch', onCoordinator: true, thisMachine: 'hawk', localUser: 'avl', rebuildTool: bash });
    const hawk = plan.deploy.hosts.hawk!;
    expect(hawk.copy).toBeUndefined();
    expect(hawk.armSetsProfile).toBe(true);
    expect(hawk.arm!.argv.slice(0, 4)).toEqual(['sudo', '-n', '--', 'sh']);
    expect(hawk.arm!.argv.slice(6, 9)).toEqual(['avalanche-arm', '/nix/var/nix/profiles/system', '{{toplevel:hawk}}']);
    expect(hawk.rebuild.argv).toEqual(['sudo', '-n', '--', 'sh', '-c', ACTIVATE_TOPLEVEL, 'avalanche-activate', '{{toplevel:hawk}}', 'switch']);
    expect(plan.deploy.hosts.calypso!.copy!.argv.slice(0, 5)).toEqual(['nix', 'copy', '--substitute-on-destination', '--to', 'ssh://deploy@calypso.internal']);
  });

  it('nixos-rebuild asked for, without --store-path: --flake as before, and the plan says it evaluates again', () => {
    const plan = planDeploy(withMethod('nixos-rebuild'), ['opi01'], { goal: 'switch', onCoordinator: true, rebuildTool: bash });
    expect(plan.deployMethod).toMatchObject({ kind: 'flake', evaluatesAgain: true });
    expect(plan.deploy.hosts.opi01!.rebuild.argv.slice(0, 4)).toEqual(['nixos-rebuild', 'switch', '--flake', '.#opi01']);
  });

  it('--dry-run names the method and why, and each direct step', () => {
    const direct = renderPlan(planDeploy(withMethod(undefined), ['opi01'], { goal: 'switch', onCoordinator: true, rebuildTool: bash }));
    expect(direct).toContain(`  method: direct — ${chooseDeployMethod(bash).why}`);
    expect(direct).toContain('    nixos-rebuild: not run (deploy method direct), so not checked');
    // Each step's heading, in the order the steps run.
    const headings = [
      'read its generation',
      'copy the closure (the target substitutes from its caches what it can)',
      'arm the magic-rollback watchdog',
      'activate (switch-to-configuration, in a transient unit where systemd runs)',
      'health checks',
      'log in over a new SSH connection, beside the health checks',
      'confirm, once the checks held and the new login worked',
    ].map((heading) => direct.indexOf(`\n    ${heading}`));
    expect(headings.every((at) => at > 0)).toBe(true);
    expect(direct).toMatch(/\n {4}arm the magic-rollback watchdog \(reverts unless confirmed within \d+ s of the activation\), then set the system profile \(a new generation\), in the same round trip\n/);
    expect([...headings].sort((a, b) => a - b)).toEqual(headings);
    const flake = renderPlan(planDeploy(withMethod('nixos-rebuild'), ['opi01'], { goal: 'switch', onCoordinator: true, rebuildTool: bash }));
    expect(flake).toContain("  method: nixos-rebuild --flake (evaluates each host again) — deploy.method is nixos-rebuild and nixos-rebuild: bash-era nixos-rebuild has no --store-path");
  });
});

describe('running the direct method (recording executor)', () => {
  it('copies before arming the watchdog, sets the profile, activates, checks, confirms — with no nixos-rebuild on this machine at all', async () => {
    const pipeline = await runPipeline([], { plan: { rebuildTool: missing }, editInventory: (json) => delete json.deploy });
    expect(pipeline.result.error).toBeUndefined();
    expect(pipeline.result.outcome).toBe('success');
    expect(pipeline.plan.deployMethod?.kind).toBe('direct');
    expect(pipeline.executor.calls.some((c) => c.argv[0] === 'nixos-rebuild')).toBe(false);
    const opi01 = deployStepsRun(pipeline).filter((step) => step.startsWith('opi01 ')).map((step) => step.slice('opi01 '.length));
    // The closure diff starts once the copy brought the closure (it runs beside the steps after it).
    expect(opi01.filter((step) => step !== 'health')).toEqual(['probe', 'copy', 'diff', 'arm', 'rebuild', 'fresh login', 'confirm']);
    expect(opi01.indexOf('rebuild')).toBeLessThan(opi01.indexOf('health'));
  });

  it('a failed copy leaves the host untouched (no watchdog armed); a failed activation is rolled back; each names the host, command, exit status and tail once', async () => {
    const { result } = await runPipeline(
      [
        when(['nix', 'copy', 'ssh://deploy@opi02.internal'], { exitCode: 1, stderr: 'error: cannot connect to opi02.internal\n' }),
        when(['avalanche-activate', 'deploy@opi01.internal'], { exitCode: 1, stderr: 'warning: the following units failed: lab-app.service\n' }),
      ],
      { plan: { rebuildTool: bash }, editInventory: (json) => delete json.deploy },
    );
    expect(result.outcome).toBe('failed');
    const message = result.error!.message;
    expect(message).toContain('opi02: cannot copy its closure: nix exited with 1');
    expect(message).toContain('  | error: cannot connect to opi02.internal');
    expect(message).toContain('opi01 failed: ssh exited with 1');
    expect(message).toContain('  | warning: the following units failed: lab-app.service');
    expect(message.split('opi01 failed').length - 1).toBe(1);
    expect(result.report.hosts.map((h) => [h.name, h.state, h.generation, h.note])).toEqual([
      ['opi01', 'rolled-back', 'previous', expect.stringContaining('switch-to-configuration failed')],
      ['opi02', 'failed', 'previous', 'not touched'],
      ['opi03', 'deployed', 'new', undefined],
    ]);
  });
});

describe('the watchdog, then the system profile (direct method)', () => {
  const direct = { plan: { rebuildTool: bash }, editInventory: (json: any) => delete json.deploy };

  it('a watchdog that cannot be armed: the host untouched (no profile set, nothing activated); named once', async () => {
    const { result, executor } = await runPipeline([when(['avalanche-arm', 'deploy@opi02.internal'], { exitCode: 1, stderr: 'sudo: a password is required\n' })], direct);
    expect(result.error!.message).toMatch(/^opi02: cannot arm the magic rollback: ssh exited with 1/m);
    expect(result.error!.message.split('opi02: cannot arm').length - 1).toBe(1);
    const opi02 = executor.calls.filter((c) => c.argv.includes('deploy@opi02.internal')).map((c) => c.argv.at(-1)!);
    // After the arm (whose watchdog script holds a rollback of its own): nothing but closing the connection.
    expect(opi02.slice(opi02.findIndex((line) => line.includes('avalanche-arm')) + 1).filter((line) => line !== 'deploy@opi02.internal')).toEqual([]);
    expect(result.report.hosts.find((h) => h.name === 'opi02')).toMatchObject({ state: 'failed', generation: 'previous', note: 'not touched' });
  });

  it('a profile that cannot be set (the arm step exits 81, armed): rolled back, nothing activated', async () => {
    const pipeline = await runPipeline([when(['avalanche-arm', 'deploy@opi02.internal'], { exitCode: PROFILE_NOT_SET, stderr: 'error: opening lock file: Permission denied\n' })], direct);
    const { result } = pipeline;
    const opi02 = deployStepsRun(pipeline).filter((step) => step.startsWith('opi02 '));
    expect(result.error!.message).toMatch(/^opi02: cannot set its system profile: ssh exited with 81/m);
    expect(opi02).not.toContain('opi02 rebuild');
    expect(opi02.at(-1)).toBe('opi02 rollback');
    expect(result.report.hosts.find((h) => h.name === 'opi02')).toMatchObject({ state: 'rolled-back', generation: 'previous', note: expect.stringContaining('setting the system profile failed') });
  });

  it('an arm step that did not finish (ssh 255, any status but a refusal): the profile may be set, so it is rolled back too', async () => {
    const pipeline = await runPipeline([when(['avalanche-arm', 'deploy@opi02.internal'], { exitCode: 255, stderr: 'Connection to opi02.internal closed by remote host.\n' })], direct);
    const { result } = pipeline;
    const opi02 = deployStepsRun(pipeline).filter((step) => step.startsWith('opi02 '));
    expect(result.error!.message).toMatch(/^opi02: cannot arm the magic rollback and set its system profile: ssh exited with 255/m);
    expect(opi02.at(-1)).toBe('opi02 rollback');
    expect(result.report.hosts.find((h) => h.name === 'opi02')).toMatchObject({ state: 'rolled-back', note: expect.stringContaining('the arm step did not finish (the watchdog may be armed and the profile set)') });
  });

  it(`a watchdog the script could not arm (exit ${NOT_ARMED}): nothing changed, the host untouched, no rollback`, async () => {
    const pipeline = await runPipeline([when(['avalanche-arm', 'deploy@opi02.internal'], { exitCode: NOT_ARMED, stderr: 'mkdir: cannot create directory: Read-only file system\n' })], direct);
    const { result } = pipeline;
    const opi02 = deployStepsRun(pipeline).filter((step) => step.startsWith('opi02 '));
    expect(result.error!.message).toMatch(/^opi02: cannot arm the magic rollback: ssh exited with 80/m);
    expect(opi02).toContain('opi02 arm');
    expect(opi02.filter((step) => step === 'opi02 rebuild' || step === 'opi02 rollback')).toEqual([]);
    expect(result.report.hosts.find((h) => h.name === 'opi02')).toMatchObject({ state: 'failed', generation: 'previous', note: 'not touched' });
  });
});

describe('the doctor says which method a deploy would use', () => {
  const helpOf = (text: string | undefined): Responder => (spec) =>
    spec.argv.join(' ') === 'nixos-rebuild --help' ? (text === undefined ? { exitCode: 127, stderr: 'spawn nixos-rebuild ENOENT' } : { stdout: text }) : undefined;
  const doctor = async (help: string | undefined, method?: 'nixos-rebuild' | 'direct') => {
    const inventory = withMethod(method);
    const check = nixosRebuildCheck(inventory);
    return check.run(createDoctorContext({ inventory, executor: new RecordingExecutor([helpOf(help)]), onCoordinator: true }, Date.now()));
  };

  it('ng: --store-path; bash-era: direct; none here: direct, and that passes; none here but nixos-rebuild asked for: fails', async () => {
    expect((await doctor(fixture('nixos-rebuild/ng.help'))).summary).toMatch(/accepts .*--store-path.*; a deploy would use: nixos-rebuild --store-path \(probed: /);
    const bashEra = await doctor(fixture('nixos-rebuild/bash-era.help'));
    expect(bashEra).toMatchObject({ status: 'pass' });
    expect(bashEra.summary).toMatch(/; a deploy would use: direct \(probed: nixos-rebuild: bash-era nixos-rebuild has no --store-path/);
    const none = await doctor(undefined);
    expect(none).toMatchObject({ status: 'pass' });
    expect(none.summary).toMatch(/^nixos-rebuild: not found .*; a deploy would use: direct/);
    expect(await doctor(undefined, 'nixos-rebuild')).toMatchObject({ status: 'fail' });
    expect((await doctor(fixture('nixos-rebuild/bash-era.help'), 'nixos-rebuild')).summary).toContain('a deploy would use: nixos-rebuild --flake (evaluates each host again)');
  });
});

describe('preflight refuses what nixos-rebuild-ng refuses beside --store-path', () => {
  it('extraArgs with --flake, --file or --rollback fail preflight with --store-path, not with --flake or direct', () => {
    const inventory = (method?: 'nixos-rebuild' | 'direct') =>
      fleetInventory((json) => {
        json.nixosRebuild.extraArgs = ['--rollback', '--file=/etc/nixos/default.nix', '--show-trace'];
        if (method) json.deploy = { method };
        else delete json.deploy;
      });
    const storePath = planDeploy(inventory(), ['opi01'], { goal: 'switch', onCoordinator: true, rebuildTool: ng });
    expect(storePath.preflight.rebuild!.problems).toEqual([
      'nixosRebuild.extraArgs: --rollback cannot go with --store-path (nixos-rebuild-ng refuses it): remove it, or set deploy.method to direct',
      'nixosRebuild.extraArgs: --file cannot go with --store-path (nixos-rebuild-ng refuses it): remove it, or set deploy.method to direct',
    ]);
    const olderNgFlake = planDeploy(inventory('nixos-rebuild'), ['opi01'], { goal: 'switch', onCoordinator: true, rebuildTool: olderNg });
    expect(olderNgFlake.preflight.rebuild!.problems).toEqual([]);
    expect(planDeploy(inventory('direct'), ['opi01'], { goal: 'switch', onCoordinator: true, rebuildTool: ng }).preflight.rebuild).toBeUndefined();
  });
});
