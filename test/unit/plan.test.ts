import { describe, expect, it } from 'vitest';
import { planDeploy } from '../../lib/plan/assemble.ts';
import { renderPlan } from '../../lib/plan/render.ts';
import { OPERATION_STAGES } from '../../lib/plan/types.ts';
import { isOnCoordinator } from '../../lib/remote/fleet.ts';
import { parseRebuildHelp } from '../../lib/nix/nixos-rebuild.ts';
import { fixture, fleetInventory } from '../helpers/fixtures.ts';

const SSH_DEFAULTS = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=10', '-o', 'ServerAliveCountMax=3'];
const SSHOPTS = ['-o', 'StrictHostKeyChecking=yes', ...SSH_DEFAULTS].join(' ');
/** One master connection per target for the run; the control directory is the run's own. */
const REUSE = ['-o', 'ControlMaster=auto', '-o', 'ControlPath={{ssh-control-dir}}/%C', '-o', 'ControlPersist=60'];
const TARGET_SSHOPTS = ['-o', 'StrictHostKeyChecking=yes', ...SSH_DEFAULTS, ...REUSE].join(' ');

const ngTool = parseRebuildHelp(['nixos-rebuild'], fixture('nixos-rebuild/ng.help'));
const bashTool = parseRebuildHelp(['nixos-rebuild'], fixture('nixos-rebuild/bash-era.help'));

describe('planning a deploy of the fleet', () => {
  const inventory = fleetInventory();
  const plan = planDeploy(inventory, ['opi01', 'opi02', 'opi03'], { goal: 'switch', onCoordinator: true, rebuildTool: ngTool });

  it('checks the seed as builder and every host as target', () => {
    expect(plan.seeds[0]!.host).toBe('opi03');
    expect(plan.preflight.targets.map((c) => c.host)).toEqual(['opi01', 'opi02', 'opi03']);
    expect(plan.seeds[0]!.check.argv).toEqual([
      'ssh', '-o', 'StrictHostKeyChecking=yes', ...SSH_DEFAULTS, '-i', '/etc/nix/builder-key',
      'nix-builder@opi03.internal', '--', 'nix-store --version',
    ]);
    // The non-root deploy user must get root without a password, as every root step will.
    expect(plan.preflight.targets[0]!.command.argv).toEqual(['ssh', '-o', 'StrictHostKeyChecking=yes', ...SSH_DEFAULTS, ...REUSE, 'deploy@opi01.internal', '--', 'sudo -n -- true']);
    expect(plan.preflight.cacheUrl).toBe('http://hawk.internal:5000');
  });

  it('evaluates every toplevel in one nix eval', () => {
    expect(plan.evaluate.argv).toEqual([
      'nix', 'eval', '--json', '.#nixosConfigurations', '--apply',
      'attrs: builtins.listToAttrs (map (name: let t = attrs.${name}.config.system.build.toplevel; in ' +
        '{ inherit name; value = { drv = t.drvPath; out = t.outPath; }; }) [ "opi01" "opi02" "opi03" ])',
    ]);
  });

  it('builds on the seed only, nothing locally', () => {
    expect(plan.seeds[0]!.build.argv).toEqual([
      'nix', '--log-format', 'internal-json', 'build', '--no-link', '--json', '--max-jobs', '0',
      '--builders', 'ssh://nix-builder@opi03.internal aarch64-linux /etc/nix/builder-key 6 2 big-parallel - -',
      '--option', 'builders-use-substitutes', 'true',
      '.#nixosConfigurations.opi01.config.system.build.toplevel',
      '.#nixosConfigurations.opi02.config.system.build.toplevel',
      '.#nixosConfigurations.opi03.config.system.build.toplevel',
    ]);
    expect(plan.seeds[0]!.build.env).toEqual({ NIX_SSHOPTS: SSHOPTS });
  });

  it('deploys the seed first, then the rest at once, with sudo for the non-root deploy user', () => {
    expect(plan.seeds[0]!.waves).toEqual([['opi03'], ['opi01', 'opi02']]);
    expect(plan.deploy.concurrency).toBe(2);
    expect(plan.deploy.hosts.opi01!.rebuild).toEqual({
      argv: ['nixos-rebuild', 'switch', '--flake', '.#opi01', '--target-host', 'deploy@opi01.internal', '--use-substitutes', '--sudo', '--no-reexec'],
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
    expect(custom.seeds[0]!.host).toBe('opi01');
    expect(custom.seeds[0]!.waves).toEqual([['opi01'], ['opi02', 'opi03']]);
    expect(custom.deploy.concurrency).toBe(1);
    expect(custom.deploy.hosts.opi02!.rebuild.argv.slice(0, 4)).toEqual(['nixos-rebuild', 'boot', '--flake', 'path:/srv/avalanche#opi02']);
    expect(custom.seeds[0]!.build.argv).toContain('ssh://nix-builder@opi01.internal aarch64-linux /etc/nix/builder-key 6 2 big-parallel - -');
  });

  it('leaves out the sudo flag for root and keeps the seed out of waves it is not in', () => {
    const rooted = fleetInventory((json) => (json.hosts.opi01.deployUser = 'root'));
    const one = planDeploy(rooted, ['opi01'], { goal: 'test', onCoordinator: true });
    expect(one.seeds[0]!.waves).toEqual([['opi01']]);
    expect(one.deploy.hosts.opi01!.rebuild.argv).not.toContain('--sudo');
    expect([one.seeds[0]!.host, ...one.preflight.targets.map((c) => c.host)]).toEqual(['opi03', 'opi01']);
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
      "      $ NIX_SSHOPTS='" + TARGET_SSHOPTS + "' nixos-rebuild switch --flake '.#opi02' --target-host deploy@opi02.internal --use-substitutes --sudo --no-reexec",
    );
    expect(text).toContain("--builders 'ssh://nix-builder@opi03.internal aarch64-linux /etc/nix/builder-key 6 2 big-parallel - -'");
    expect(text).toContain('GET http://hawk.internal:5000/{{toplevel-hash:opi03}}.narinfo');
    expect(text).toContain("    nixos-rebuild on this machine (read from nixos-rebuild --help when planning — the one command --dry-run runs): nixos-rebuild: nixos-rebuild-ng\n");
    const missing = renderPlan(planDeploy(inventory, ['opi01'], { goal: 'switch', onCoordinator: true, rebuildTool: { command: ['nixos-rebuild'], found: false, flavour: 'unknown', flags: [], error: 'command not found' } }));
    expect(missing).toContain('the one command --dry-run runs): nixos-rebuild: not found (command not found) — preflight will fail');
    expect(text).toContain('under a Nix daemon the daemon connects to the builder: its key and host key come from the --builders spec above; NIX_SSHOPTS and ssh.options do not reach it');
    expect(text).not.toContain('nix copy');
  });
});
