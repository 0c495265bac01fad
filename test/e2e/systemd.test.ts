/**
 * The deploy against hosts as the fleet has them: systemd as PID 1, a Nix
 * daemon, a non-root `deploy` user with passwordless sudo, the orchestrator
 * itself running as a non-root user (avl) on hawk or on calypso, with the
 * deploy method that coordinator's strict nixos-rebuild stand-in leads to
 * (bash-era on hawk: direct; ng on calypso: --store-path). Each scenario
 * starts a fleet revision of its own.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/fixtures.ts';
import {
  activated,
  activations,
  buildsOf,
  coordinator,
  currentSystem,
  defaultDeployMethod,
  fault,
  inHost,
  inventoryCopy,
  inventoryPath,
  kernelName,
  lab,
  labSkipReason,
  newGeneration,
  runOnCoordinator,
  runScript,
  systemProfile,
  toplevelName,
} from './lab.ts';

type HostRow = { name: string; state: string; generation: string; note?: string; toplevel?: string };
const OPIS = ['opi01', 'opi02', 'opi03'];
const states = (report: { hosts: HostRow[] }) => report.hosts.map((h) => [h.name, h.state, h.generation]);
const snapshot = (host: string) => ({ profile: systemProfile(host), current: currentSystem(host) });
const stageOutcome = (report: { stages: { name: string; outcome: string }[] }, name: string) => report.stages.find((s) => s.name === name)?.outcome;

async function inHostText(host: string, argv: readonly string[]): Promise<string> {
  const result = await inHost(host, argv);
  return result.stdout.trim();
}

/** Lines in the host's rollback log: one per generation the watchdog or a rollback restored. */
async function rollbackCount(host: string): Promise<string> {
  return inHostText(host, ['sh', '-c', 'cat /var/lib/avalanche-deploy/rollbacks.log 2>/dev/null | wc -l']);
}

/** lab-app.service's state and the system's, as systemd says them on the host. */
async function systemdState(host: string): Promise<{ app: string; system: string }> {
  return { app: await inHostText(host, ['systemctl', 'is-active', 'lab-app.service']), system: await inHostText(host, ['systemctl', 'is-system-running']) };
}

describe.skipIf(!lab)(`systemd hosts, a non-root deploy user, the orchestrator as a non-root user${lab ? '' : ` (skipped: ${labSkipReason})`}`, () => {
  it('deploy-all as deploy with sudo: every host on its new generation, /run/current-system switched, the unit active', async () => {
    const whoami = await runOnCoordinator(['id', '-un']);
    expect(whoami.stdout.trim()).toBe('avl');
    expect(JSON.parse(readFileSync(inventoryPath(), 'utf8')).hosts.opi01.deployUser).toBe('deploy');

    await newGeneration('s1');
    const run = await runScript('deploy-all', ['--json']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(states(run.json.report)).toEqual(OPIS.map((h) => [h, 'deployed', 'new']));
    for (const host of OPIS) {
      const toplevel = run.json.report.hosts.find((h: HostRow) => h.name === host).toplevel;
      expect(toplevel.endsWith(`-${toplevelName(host, 's1')}`)).toBe(true);
      expect(snapshot(host)).toEqual({ profile: toplevel, current: toplevel });
      expect(activations(host).at(-1)).toEqual({ goal: 'switch', toplevel });
      expect(await systemdState(host)).toEqual({ app: 'active', system: 'running' });
      // The unit systemd runs is the new generation's.
      expect(await inHostText(host, ['systemctl', 'show', '-P', 'FragmentPath', 'lab-app.service'])).toBe('/run/systemd/system/lab-app.service');
      expect(await inHostText(host, ['readlink', '-f', '/run/systemd/system/lab-app.service'])).toBe(`${toplevel}/etc/systemd/system/lab-app.service`);
    }
    // The kernel was built once, on the seed, through the builder user.
    expect(buildsOf('s1').filter((b) => b.name.startsWith('linux-'))).toEqual([{ host: 'opi03', name: kernelName('s1') }]);
    expect(run.json.report.builds.map((b: { machine: string }) => b.machine)).toEqual(expect.arrayContaining(['ssh://nix-builder@10.213.77.13']));
    // The default method's commands got root as this coordinator's tool knows how, and only so.
    const argvs: string[][] = run.json.report.commands.map((c: { argv: string[] }) => c.argv);
    const rebuilds = argvs.filter((argv) => argv[0] === 'nixos-rebuild' && argv[1] === 'switch');
    if (defaultDeployMethod() === 'direct') {
      // No nixos-rebuild: the profile (in the arm step, after the watchdog) and the activation as root over ssh, through the deploy user's sudo -n.
      expect(rebuilds).toEqual([]);
      const remote = argvs.filter((argv) => argv[0] === 'ssh').map((argv) => argv.at(-1)!);
      expect(remote.filter((command) => /^sudo -n -- sh -c '[\s\S]*' avalanche-arm \/nix\/var\/nix\/profiles\/system '?\/nix\/store\/[0-9a-z]{32}-nixos-system-opi0\d-\S+ '[\s\S]*$/.test(command))).toHaveLength(3);
      expect(remote.filter((command) => /^sudo -n -- sh -c '[\s\S]*' avalanche-activate '?\/nix\/store\/[0-9a-z]{32}-nixos-system-opi0\d-\S+ switch$/.test(command))).toHaveLength(3);
    } else {
      // The coordinator's own nixos-rebuild (ng) got the flags it knows, and only those.
      expect(rebuilds).toHaveLength(3);
      for (const argv of rebuilds) expect(argv.slice(-2)).toEqual(['--sudo', '--no-reexec']);
    }
  });

  it('the bash-era stand-in refuses --sudo and --no-reexec as the real one does; ng accepts them; without the re-exec flag both die with Exec format error', async () => {
    const bashEra = join(repoRoot, 'test/lab/bin/bash-era/nixos-rebuild');
    const target = ['--flake', `path:${lab!.dir}/flake#opi01`, '--target-host', 'deploy@10.213.77.11'];
    for (const flag of ['--sudo', '--no-reexec']) {
      const refused = await runOnCoordinator([bashEra, 'switch', ...target, flag]);
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toContain(`unknown option \`${flag}'`);
    }
    const ng = join(repoRoot, 'test/lab/bin/ng/nixos-rebuild');
    const unknown = await runOnCoordinator([ng, 'switch', ...target, '--elevate']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain('error: unrecognized arguments: --elevate');
    // x86_64 coordinator, aarch64 target: the re-exec of the target's nixos-rebuild cannot run here.
    await newGeneration('s2');
    const reexec = await runOnCoordinator([bashEra, 'switch', ...target, '--use-remote-sudo']);
    expect(reexec.exitCode).toBe(126);
    expect(reexec.stderr).toContain('Exec format error');
    expect(activated('opi01', 's2')).toBe(false);
  });

  it('a wrong cache key fails in preflight, before anything is built; the shipped placeholder too', async () => {
    await newGeneration('s3');
    const otherKey = inventoryCopy('other-key', (json) => (json.cache.publicKey = 'other-1:oDIKru1P7ue9oKkVydLnKg38iF3daOkkDMyi8AchDh8='));
    const run = await runScript('deploy', ['opi01', '--json'], { inventory: otherKey });
    expect(run.exitCode).toBe(1);
    expect(stageOutcome(run.json.report, 'preflight')).toBe('failed');
    expect(stageOutcome(run.json.report, 'seed-build')).toBe('not-started');
    expect(run.json.error.message).toMatch(/^key mismatch: signed by lab-hawk-1 — the cache serves \/nix\/store\/\S+ with Sig: lab-hawk-1:/);
    expect(run.json.error.hints).toEqual([expect.stringMatching(/^Key mismatch:/)]);
    expect(buildsOf('s3')).toEqual([]);

    const placeholder = inventoryCopy('placeholder-key', (json) => (json.cache.publicKey = 'hawk.internal:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='));
    const shipped = await runScript('deploy', ['opi01', '--json'], { inventory: placeholder });
    expect(shipped.exitCode).toBe(1);
    expect(shipped.json.error.message).toContain('cache.publicKey is the placeholder shipped in hosts.json');
    expect(buildsOf('s3')).toEqual([]);
  });

  it('a broken generation (its unit fails) is rolled back by the unit health check; the host runs its previous system again', async () => {
    await newGeneration('s4', { brokenUnit: ['opi02'] });
    const before = snapshot('opi02');
    const run = await runScript('deploy', ['opi02', '--json']);
    expect(run.exitCode).toBe(1);
    expect(run.json.error.message).toMatch(/opi02: health check failed after \d attempt\(s\): (units active: lab-app.service|system state is running): /);
    expect(states(run.json.report)).toEqual([['opi02', 'rolled-back', 'previous']]);
    expect(activated('opi02', 's4')).toBe(true);
    expect(snapshot('opi02')).toEqual(before);
    expect(await systemdState('opi02')).toEqual({ app: 'active', system: 'running' });
  });

  it('a unit that dies seconds after activation is rolled back by the settle window', async () => {
    await newGeneration('s5', { unitDies: ['opi01'] });
    const before = snapshot('opi01');
    const settle = inventoryCopy('settle', (json) => (json.health.settleSeconds = 8));
    const run = await runScript('deploy', ['opi01', '--json'], { inventory: settle });
    expect(run.exitCode).toBe(1);
    expect(run.json.error.message).toMatch(/opi01: health check failed \d+ s after activation, within the 8 s settle window: /);
    expect(states(run.json.report)).toEqual([['opi01', 'rolled-back', 'previous']]);
    expect(run.json.report.hosts[0].note).toBe('rolled back: health check failed in the settle window');
    expect(snapshot('opi01')).toEqual(before);
    expect(await systemdState('opi01')).toEqual({ app: 'active', system: 'running' });
  });

  it('an activation that restarts sshd is confirmed over a new connection and kept', async () => {
    await newGeneration('s6', { restartSshd: ['opi03'] });
    const sshdBefore = await inHostText('opi03', ['systemctl', 'show', '-P', 'MainPID', 'ssh.service']);
    const rollbacksBefore = await rollbackCount('opi03');
    const run = await runScript('deploy', ['opi03', '--confirm-timeout', '5', '--json']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(states(run.json.report)).toEqual([['opi03', 'deployed', 'new']]);
    const toplevel = run.json.report.hosts[0].toplevel;
    expect(await inHostText('opi03', ['systemctl', 'show', '-P', 'MainPID', 'ssh.service'])).not.toBe(sshdBefore);
    // Past the watchdog's window: confirmed, so it did not revert.
    await new Promise((resolve) => setTimeout(resolve, 7_000));
    expect(snapshot('opi03')).toEqual({ profile: toplevel, current: toplevel });
    expect(await rollbackCount('opi03')).toBe(rollbacksBefore);
  });

  it('a coordinator whose Nix daemon does not trust the orchestrator\'s user fails in preflight with the fix', async () => {
    await newGeneration('s7');
    await fault('distrust', coordinator());
    try {
      const run = await runScript('deploy', ['opi01', '--json']);
      expect(run.exitCode).toBe(1);
      expect(stageOutcome(run.json.report, 'preflight')).toBe('failed');
      expect(run.json.error.message).toMatch(/the Nix daemon does not trust avl, so it would ignore --builders and build elsewhere than on the builders it names/);
      expect(run.json.error.hints).toEqual(expect.arrayContaining([expect.stringMatching(/^Add avl to trusted-users in this machine's nix.conf/)]));
      expect(buildsOf('s7')).toEqual([]);
    } finally {
      await fault('trust', coordinator());
    }
  });
});
