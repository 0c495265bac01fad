import { describe, expect, it } from 'vitest';
import { userInfo } from 'node:os';
import { renderExecPlan } from '../../lib/cli/exec.ts';
import { renderGenerationsPlan } from '../../lib/cli/generations.ts';
import { thisMachine } from '../../lib/cli/selection.ts';
import { targetCheck } from '../../lib/doctor/checks/targets.ts';
import { planDeploy } from '../../lib/plan/assemble.ts';
import { planExec } from '../../lib/plan/exec.ts';
import { planGenerations } from '../../lib/plan/generations.ts';
import { renderPlan } from '../../lib/plan/render.ts';
import { OPERATION_STAGES } from '../../lib/plan/types.ts';
import { isOnCoordinator, thisMachineAmong } from '../../lib/remote/fleet.ts';
import { parseRebuildHelp } from '../../lib/nix/nixos-rebuild.ts';
import { fixture, fleetInventory, wholeFleetInventory } from '../helpers/fixtures.ts';

const SSH_DEFAULTS = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=10', '-o', 'ServerAliveCountMax=3'];
const SSHOPTS = ['-o', 'StrictHostKeyChecking=yes', ...SSH_DEFAULTS].join(' ');
/** One master connection per target and builder for the run; the control directory is the run's own. */
const REUSE = ['-o', 'ControlMaster=auto', '-o', 'ControlPath={{ssh-control-dir}}/%C', '-o', 'ControlPersist=60'];
const TARGET_SSHOPTS = ['-o', 'StrictHostKeyChecking=yes', ...SSH_DEFAULTS, ...REUSE].join(' ');

const ngTool = parseRebuildHelp(['nixos-rebuild'], fixture('nixos-rebuild/ng.help'));
const bashTool = parseRebuildHelp(['nixos-rebuild'], fixture('nixos-rebuild/bash-era.help'));

describe('planning a deploy of the fleet', () => {
  const inventory = fleetInventory();
  const plan = planDeploy(inventory, ['opi01', 'opi02', 'opi03'], { goal: 'switch', onCoordinator: true, rebuildTool: ngTool });

  it('checks the builders (the seed first) and every host as target', () => {
    expect(plan.builds.map((b) => [b.system, b.on, b.builders.map((x) => x.host)])).toEqual([['aarch64-linux', 'builders', ['opi03', 'opi01', 'opi02']]]);
    expect(plan.preflight.targets.map((c) => c.host)).toEqual(['opi01', 'opi02', 'opi03']);
    expect(plan.builds[0]!.builders[0]!.check.argv).toEqual([
      'ssh', '-o', 'StrictHostKeyChecking=yes', ...SSH_DEFAULTS, ...REUSE, '-i', '/etc/nix/builder-key',
      'nix-builder@opi03.internal', '--', 'nix-store --version',
    ]);
    // The non-root deploy user must get root without a password, as every root step will.
    expect(plan.preflight.targets[0]!.command.argv).toEqual(['ssh', '-o', 'StrictHostKeyChecking=yes', ...SSH_DEFAULTS, ...REUSE, 'deploy@opi01.internal', '--', 'sudo -n -- true']);
    expect(plan.preflight.cacheUrl).toBe('http://hawk.internal:5000');
  });

  it('evaluates each toplevel once: the first host of each system alone (for the head start), the others in a second nix eval', () => {
    expect(plan.evaluate.map((e) => e.hosts)).toEqual([['opi01'], ['opi02', 'opi03']]);
    expect(plan.evaluate[1]!.command.argv).toEqual([
      'nix', 'eval', '--json', '.#nixosConfigurations', '--apply',
      'attrs: builtins.listToAttrs (map (name: let t = attrs.${name}.config.system.build.toplevel; in ' +
        '{ inherit name; value = { drv = t.drvPath; out = t.outPath; }; }) [ "opi02" "opi03" ])',
    ]);
    // The head start builds opi01's on the seed alone; the build of all on every builder that answered.
    const seedOnly = plan.builds[0]!.build.argv.slice(0, -2).map((a) => (a === '{{builders:aarch64-linux}}' ? '{{seed-builder:aarch64-linux}}' : a));
    expect(plan.builds[0]!.build.argv).toContain('{{builders:aarch64-linux}}');
    expect(plan.builds[0]!.headStart).toEqual({ hosts: ['opi01'], build: { ...plan.builds[0]!.build, argv: [...seedOnly, '{{toplevel-drv:opi01}}^out'] } });
    // One host: one evaluation, no head start.
    const one = planDeploy(inventory, ['opi02'], { goal: 'switch', onCoordinator: true });
    expect([one.evaluate.map((e) => e.hosts), one.builds[0]!.headStart]).toEqual([[['opi02']], undefined]);
  });

  it('builds on the builders that answer, the seed first, nothing locally', () => {
    expect(plan.builds[0]!.builders.map((b) => b.spec)).toEqual(
      ['opi03', 'opi01', 'opi02'].map((h) => `ssh://nix-builder@${h}.internal aarch64-linux /etc/nix/builder-key 6 2 big-parallel - -`),
    );
    expect(plan.builds[0]!.build.argv).toEqual([
      'nix', '--log-format', 'internal-json', 'build', '--no-link', '--json',
      // What the head start builds is locked by its own nix build: looked at again every second, not every 5.
      '--option', 'build-poll-interval', '1',
      '--max-jobs', '0', '--builders', '{{builders:aarch64-linux}}',
      '--option', 'builders-use-substitutes', 'true',
      // The derivations the evaluation instantiated (the flake is not evaluated again); opi01's is the head start's.
      '{{toplevel-drv:opi02}}^out', '{{toplevel-drv:opi03}}^out',
    ]);
    // Nix's ssh to the builders reuses the connection preflight's login opened.
    expect(plan.builds[0]!.build.env).toEqual({ NIX_SSHOPTS: [SSHOPTS, ...REUSE].join(' ') });
  });

  it('deploys every host at once, with sudo for the non-root deploy user; the built toplevel (ng has --store-path)', () => {
    expect(plan.waves).toEqual([['opi01', 'opi02', 'opi03']]);
    expect(plan.deploy.canaries).toEqual([]);
    expect(plan.deploy.concurrency).toBe(3);
    expect(plan.deploy.hosts.opi01!.rebuild).toEqual({
      argv: ['nixos-rebuild', 'switch', '--store-path', '{{toplevel:opi01}}', '--target-host', 'deploy@opi01.internal', '--use-substitutes', '--sudo', '--no-reexec'],
      env: { NIX_SSHOPTS: TARGET_SSHOPTS },
      timeoutMs: 60 * 60_000,
    });
  });

  it('passes the bash-era nixos-rebuild only the flags it knows: --use-remote-sudo and --fast', () => {
    const bash = planDeploy(inventory, ['opi01'], { goal: 'switch', onCoordinator: true, rebuildTool: bashTool });
    expect(bash.deploy.hosts.opi01!.rebuild.argv.slice(-3)).toEqual(['--use-substitutes', '--use-remote-sudo', '--fast']);
    expect(bash.preflight.rebuild!.problems).toEqual([]);
  });

  it('stops the re-exec on the same system too: the probed nixos-rebuild is the one whose flags were chosen', () => {
    const same = planDeploy(inventory, ['opi01'], { goal: 'switch', onCoordinator: true, rebuildTool: ngTool, localSystem: 'aarch64-linux' });
    expect(same.deploy.hosts.opi01!.rebuild.argv.slice(-2)).toEqual(['--sudo', '--no-reexec']);
    const noFlag = { ...ngTool, flags: ngTool.flags.filter((f) => f !== '--no-reexec' && f !== '--fast') };
    expect(planDeploy(inventory, ['opi01'], { goal: 'switch', onCoordinator: true, rebuildTool: noFlag, localSystem: 'aarch64-linux' }).preflight.rebuild!.problems).toEqual([]);
    expect(planDeploy(inventory, ['opi01'], { goal: 'switch', onCoordinator: true, rebuildTool: noFlag }).preflight.rebuild!.problems).toEqual([
      'nixos-rebuild: nixos-rebuild-ng accepts neither --no-reexec nor --fast: it would re-exec the target\'s nixos-rebuild here (Exec format error)',
    ]);
  });

  it('with a tool it could not identify, uses only flags every nixos-rebuild accepts', () => {
    const unknown = planDeploy(inventory, ['opi01'], { goal: 'switch', onCoordinator: true });
    expect(unknown.preflight.rebuild!.tool.flavour).toBe('unknown');
    expect(unknown.deploy.hosts.opi01!.rebuild.argv.slice(-2)).toEqual(['--use-remote-sudo', '--fast']);
  });

  it('replaces managed flags in extraArgs and refuses flags the tool does not know, before anything runs', () => {
    const extra = fleetInventory((json) => (json.nixosRebuild = { command: ['nixos-rebuild'], extraArgs: ['--no-reexec', '--sudo', '--print-build-logs', '--elevate'] }));
    const bash = planDeploy(extra, ['opi01'], { goal: 'switch', onCoordinator: true, rebuildTool: bashTool });
    expect(bash.deploy.hosts.opi01!.rebuild.argv).not.toContain('--no-reexec');
    expect(bash.deploy.hosts.opi01!.rebuild.argv).not.toContain('--sudo');
    expect(bash.preflight.rebuild!.problems).toEqual([
      'nixosRebuild.extraArgs: --print-build-logs is not an option of nixos-rebuild: bash-era nixos-rebuild',
      'nixosRebuild.extraArgs: --elevate is not an option of nixos-rebuild: bash-era nixos-rebuild',
    ]);
    const forced = fleetInventory((json) => (json.nixosRebuild = { command: ['nixos-rebuild'], sudoFlag: '--sudo' }));
    expect(planDeploy(forced, ['opi01'], { goal: 'switch', onCoordinator: true, rebuildTool: bashTool }).preflight.rebuild!.problems).toEqual([
      'nixos-rebuild: bash-era nixos-rebuild accepts none of --sudo, needed for a non-root deploy user',
    ]);
  });

  it('takes goal, flake, seed and concurrency from the options', () => {
    const custom = planDeploy(inventory, ['opi01', 'opi02', 'opi03'], {
      goal: 'boot', flake: 'path:/srv/avalanche', seed: 'opi01', concurrency: 1, onCoordinator: true,
    });
    expect(custom.builds[0]!.builders.map((b) => b.host)).toEqual(['opi01', 'opi03', 'opi02']);
    expect(custom.waves).toEqual([['opi01', 'opi02', 'opi03']]);
    expect(custom.deploy.concurrency).toBe(1);
    expect(custom.deploy.hosts.opi02!.rebuild.argv.slice(0, 4)).toEqual(['nixos-rebuild', 'boot', '--flake', 'path:/srv/avalanche#opi02']);
    expect(custom.builds[0]!.builders[0]!.spec).toBe('ssh://nix-builder@opi01.internal aarch64-linux /etc/nix/builder-key 6 2 big-parallel - -');
  });

  it('a canary wave only when asked for (--canary) or rolling (the seeds); a canary must be deployed and not go last anyway', () => {
    expect(planDeploy(inventory, ['opi01', 'opi02', 'opi03'], { goal: 'switch', onCoordinator: true, canaries: ['opi02'] }).waves).toEqual([['opi02'], ['opi01', 'opi03']]);
    const rolling = planDeploy(inventory, ['opi01', 'opi02', 'opi03'], { goal: 'switch', onCoordinator: true, rolling: true });
    expect([rolling.waves, rolling.deploy.canaries]).toEqual([[['opi03'], ['opi01'], ['opi02']], ['opi03']]);
    expect(renderPlan(rolling)).toContain('opi03 first (canary: the others only if it deploys well)');
    expect(planDeploy(inventory, ['opi01', 'opi02', 'opi03'], { goal: 'switch', onCoordinator: true, rolling: true, canaries: ['opi01'] }).waves).toEqual([['opi01'], ['opi02'], ['opi03']]);
    expect(() => planDeploy(inventory, ['opi01', 'opi02'], { goal: 'switch', onCoordinator: true, canaries: ['opi03'] })).toThrow(/--canary opi03: not one of the hosts deployed \(opi01, opi02\)/);
    const whole = wholeFleetInventory();
    expect(() => planDeploy(whole, Object.keys(whole.hosts), { goal: 'switch', onCoordinator: true, thisMachine: 'hawk', canaries: ['hawk'] })).toThrow(/--canary hawk: the cache host and the machine the run is on go last/);
    // A build deploys nothing: no canary.
    expect(planDeploy(inventory, ['opi01', 'opi02', 'opi03'], { goal: 'build', onCoordinator: true, rolling: true }).deploy.canaries).toEqual([]);
  });

  it('leaves out the sudo flag for root and keeps the seed out of waves it is not in', () => {
    const rooted = fleetInventory((json) => (json.hosts.opi01.deployUser = 'root'));
    const one = planDeploy(rooted, ['opi01'], { goal: 'test', onCoordinator: true });
    expect(one.waves).toEqual([['opi01']]);
    expect(one.deploy.hosts.opi01!.rebuild.argv).not.toContain('--sudo');
    expect([one.builds[0]!.builders[0]!.host, ...one.preflight.targets.map((c) => c.host)]).toEqual(['opi03', 'opi01']);
  });

  it('copies the result to the coordinator only when running elsewhere', () => {
    expect(plan.copyToCoordinator).toBeUndefined();
    const elsewhere = planDeploy(inventory, ['opi03'], { goal: 'switch', onCoordinator: false });
    expect(elsewhere.copyToCoordinator!.argv).toEqual(['nix', 'copy', '--to', 'ssh://root@hawk.internal', '{{toplevel:opi03}}']);
  });

  it('knows when it runs on the coordinator', () => {
    expect(isOnCoordinator(inventory, 'hawk')).toBe(true);
    expect(isOnCoordinator(inventory, 'hawk.internal')).toBe(true);
    expect(isOnCoordinator(inventory, 'calypso')).toBe(false);
    expect(isOnCoordinator(fleetInventory((json) => (json.coordinator.local = true)), 'ci-runner')).toBe(true);
  });

  it('renders every stage with its exact commands for --dry-run', () => {
    const text = renderPlan(plan);
    const headings = text.split('\n').filter((line) => /^\d\. /.test(line)).map((line) => line.split(' ')[1]);
    expect(headings).toEqual(['preflight', 'evaluate', 'seed', 'wait', 'deploy', 'report']);
    expect(OPERATION_STAGES.deploy).toHaveLength(6);
    expect(text).toContain(
      "      $ NIX_SSHOPTS='" + TARGET_SSHOPTS + "' nixos-rebuild switch --store-path '{{toplevel:opi02}}' --target-host deploy@opi02.internal --use-substitutes --sudo --no-reexec",
    );
    expect(text).toContain("--builders '{{builders:aarch64-linux}}'");
    expect(text).toContain('\n      ssh://nix-builder@opi03.internal aarch64-linux /etc/nix/builder-key 6 2 big-parallel - -\n');
    expect(text).toContain('GET http://hawk.internal:5000/{{toplevel-hash:opi03}}.narinfo');
    expect(text).toContain("    nixos-rebuild on this machine (read from nixos-rebuild --help when planning — the one command --dry-run runs): nixos-rebuild: nixos-rebuild-ng\n");
    const missing = renderPlan(planDeploy(inventory, ['opi01'], { goal: 'switch', onCoordinator: true, rebuildTool: { command: ['nixos-rebuild'], found: false, flavour: 'unknown', flags: [], error: 'command not found' } }));
    expect(missing).toContain('the one command --dry-run runs): nixos-rebuild: not found (command not found) — preflight will fail');
    expect(text).toContain('under a Nix daemon the daemon connects to the builder: its key and host key come from the --builders spec above; NIX_SSHOPTS and ssh.options do not reach it');
    expect(text).not.toContain('nix copy');
  });
});

describe('planning the whole fleet: two systems, the coordinator a target', () => {
  const whole = wholeFleetInventory();
  const all = Object.keys(whole.hosts);

  it('builds each system where it belongs: aarch64 on the opis (the seed first), x86_64 here on hawk', () => {
    const plan = planDeploy(whole, all, { goal: 'switch', onCoordinator: true, thisMachine: 'hawk', localUser: 'avl', rebuildTool: ngTool });
    expect(plan.builds.map((b) => [b.system, b.on, b.hosts, b.builders.map((x) => x.host)])).toEqual([
      ['aarch64-linux', 'builders', ['opi01', 'opi02', 'opi03'], ['opi03', 'opi01', 'opi02']],
      ['x86_64-linux', 'here', ['hawk', 'calypso'], []],
    ]);
    expect(plan.builds[1]!.build.argv).toEqual([
      'nix', '--log-format', 'internal-json', 'build', '--no-link', '--json', '--option', 'build-poll-interval', '1', '--max-jobs', 'auto', '--builders', '',
      '{{toplevel-drv:calypso}}^out',
    ]);
    expect(plan.builds[1]!.headStart!.build.argv.at(-1)).toBe('{{toplevel-drv:hawk}}^out');
    // Each system's first host in the first evaluation, every other host in the second.
    expect(plan.evaluate.map((e) => e.hosts)).toEqual([['opi01', 'hawk'], ['opi02', 'opi03', 'calypso']]);
    expect(plan.evaluate[0]!.command.argv.at(-1)).toContain('[ "opi01" "hawk" ]');
  });

  it('deploys the seed first and hawk, the machine it runs on, last, here: no ssh, sudo -n, no --target-host', () => {
    const plan = planDeploy(whole, all, { goal: 'switch', onCoordinator: true, thisMachine: 'hawk', localUser: 'avl', rebuildTool: ngTool });
    expect(plan.waves).toEqual([['opi01', 'opi02', 'opi03', 'calypso'], ['hawk']]);
    expect(plan.deploy.concurrency).toBe(4);
    const hawk = plan.deploy.hosts.hawk!;
    expect(hawk.target).toMatchObject({ user: 'avl', escalation: 'sudo', local: true });
    expect(hawk.rebuild.argv).toEqual(['nixos-rebuild', 'switch', '--store-path', '{{toplevel:hawk}}', '--use-substitutes', '--sudo', '--no-reexec']);
    expect(hawk.probe.argv[0]).toBe('sh');
    expect(hawk.arm!.argv.slice(0, 4)).toEqual(['sudo', '-n', '--', 'sh']);
    expect(hawk.confirm!.argv.slice(0, 4)).toEqual(['sudo', '-n', '--', 'sh']);
    expect(hawk.closeConnection).toBeUndefined();
    expect(hawk.health!.checks.map((c) => c.name)).not.toContain('ssh answers');
    expect(plan.preflight.targets.find((t) => t.host === 'hawk')).toMatchObject({ command: { argv: ['sudo', '-n', '--', 'true'] }, escalates: true, local: true });
    // calypso is an x86_64 target like any other: over ssh, as its deploy user.
    expect(plan.deploy.hosts.calypso!.rebuild.argv).toContain('deploy@calypso.internal');
    expect(renderPlan(plan)).toContain('5. deploy (switch; hawk (this machine, no ssh) last, at most 4 at a time)');
    // As root here, nothing is escalated.
    const asRoot = planDeploy(whole, all, { goal: 'switch', onCoordinator: true, thisMachine: 'hawk', localUser: 'root', rebuildTool: ngTool });
    expect(asRoot.deploy.hosts.hawk!.rebuild.argv).not.toContain('--sudo');
    expect(asRoot.deploy.hosts.hawk!.arm!.argv[0]).toBe('sh');
  });

  it('from calypso: x86_64 built on hawk over ssh as its builder; hawk, the cache host, over ssh near the end; calypso here and last', () => {
    const plan = planDeploy(whole, all, { goal: 'switch', onCoordinator: false, thisMachine: 'calypso', localUser: 'avl', rebuildTool: ngTool });
    const x86 = plan.builds[1]!;
    expect([x86.on, x86.builders.map((b) => b.spec)]).toEqual(['builders', ['ssh://root@hawk.internal x86_64-linux - 8 4 nixos-test,benchmark,big-parallel,kvm - -']]);
    expect(x86.build.argv.slice(9, 13)).toEqual(['--max-jobs', '0', '--builders', '{{builders:x86_64-linux}}']);
    expect(plan.waves).toEqual([['opi01', 'opi02', 'opi03'], ['hawk'], ['calypso']]);
    expect(plan.deploy.hosts.hawk!.rebuild.argv).toContain('deploy@hawk.internal');
    expect(plan.deploy.hosts.calypso!.target.local).toBe(true);
    // Without coordinator.builder: one job, Nix's default features.
    const bare = wholeFleetInventory((json) => delete json.coordinator.builder);
    expect(planDeploy(bare, ['calypso'], { goal: 'switch', onCoordinator: false }).builds[0]!.builders[0]!.spec).toBe(
      'ssh://root@hawk.internal x86_64-linux - 1 1 nixos-test,benchmark,big-parallel - -',
    );
  });

  it('knows which selected host is the machine it runs on', () => {
    expect(thisMachineAmong(whole, all, 'hawk')).toBe('hawk');
    expect(thisMachineAmong(whole, ['opi01'], 'hawk')).toBeUndefined();
    expect(thisMachineAmong(whole, all, 'calypso.internal')).toBe('calypso');
    expect(thisMachineAmong(whole, all, 'calypso')).toBe('calypso');
    expect(thisMachineAmong(whole, all, 'ci-runner')).toBeUndefined();
    // coordinator.local says where the coordinator's commands run, not which host this machine is.
    const local = wholeFleetInventory((json) => (json.coordinator.local = true));
    expect(thisMachine(local, 'ci-runner')).toBeUndefined();
    expect(thisMachine(local, 'hawk')?.name).toBe('hawk');
    expect(() => thisMachine(local, 'calypso')).toThrow(/coordinator\.local is true \(the run is on hawk\), but this machine's hostname calypso is calypso's/);
  });

  it('generations, exec and the doctor reach the machine they run on as the deploy does: here, without ssh', () => {
    const here = { name: 'hawk', user: 'avl' };
    const generations = planGenerations(whole, { on: ['hawk', 'opi01'], exclude: [] }, { here });
    expect(generations.hosts.map((h) => h.command.argv[0])).toEqual(['ssh', 'sh']);
    expect(renderGenerationsPlan(generations)).toMatch(/^ {2}hawk \(here, as avl\):$/m);
    const exec = planExec(whole, ['hawk'], { argv: ['systemctl', 'is-active', 'harmonia'], sudo: true, here });
    expect(exec.hosts[0]!.command.argv.slice(0, 4)).toEqual(['sudo', '-n', '--', 'timeout']);
    expect(renderExecPlan(exec)).toContain('as root (sudo -n) (the machine this runs on: here, as this user, without ssh)');
    expect(targetCheck(whole, 'hawk', here).title).toBe('target hawk (this machine) answers here as avl');
    expect(targetCheck(whole, 'calypso', here).title).toBe('target calypso answers as deploy@calypso.internal');
    expect(thisMachine(whole, 'hawk')).toEqual({ name: 'hawk', user: userInfo().username });
    expect(thisMachine(fleetInventory(), 'hawk')).toBeUndefined();
  });

  it('refuses a coordinator listed as a target of another system', () => {
    expect(() => wholeFleetInventory((json) => (json.hosts.hawk.system = 'aarch64-linux'))).toThrow(
      /hosts\.hawk\.system: aarch64-linux, but coordinator\.system says x86_64-linux for the same machine/,
    );
  });
});

describe('--reboot and the machine the run is on', () => {
  it('refuses to reboot the machine the run is on, naming it and the way out', () => {
    const whole = wholeFleetInventory();
    expect(() => planDeploy(whole, ['opi01', 'hawk'], { goal: 'boot', reboot: true, onCoordinator: true, thisMachine: 'hawk', localUser: 'avl' })).toThrow(
      /--reboot: hawk is the machine this run is on, which cannot reboot and wait for itself; --exclude hawk/,
    );
    // From calypso, hawk is a target like any other: it may reboot.
    const plan = planDeploy(whole, ['opi01', 'hawk'], { goal: 'boot', reboot: true, onCoordinator: false, thisMachine: 'calypso', localUser: 'avl' });
    expect(plan.deploy.hosts.hawk!.reboot).toBeDefined();
  });
});
