/**
 * `--goal build` in the lab: the prebuild CI runs on a push. It builds every
 * toplevel once (on the seed), pins it on hawk and waits until the cache
 * serves it signed, and touches no host; a deploy of the same revision then
 * builds nothing. Each scenario starts a new fleet revision.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  activations,
  asHawk,
  buildsOf,
  currentSystem,
  fault,
  hostAddress,
  inventoryPath,
  kernelName,
  lab,
  labSkipReason,
  newGeneration,
  runScript,
  systemProfile,
  toplevelName,
} from './lab.ts';

const GC_ROOTS = '/nix/var/nix/gcroots/arm-cache';
const CACHE = 'http://10.213.77.1:5000';

function pinned(storePath: string): boolean {
  return existsSync(GC_ROOTS) && readdirSync(GC_ROOTS).some((name) => readlinkSync(`${GC_ROOTS}/${name}`) === storePath);
}

/** What each host runs and boots, and how often it was activated: a build must change none of it. */
function hostState(hosts: readonly string[]) {
  return Object.fromEntries(hosts.map((h) => [h, { profile: systemProfile(h), current: currentSystem(h), activations: activations(h).length }]));
}

describe.skipIf(!lab)(`--goal build in the lab${lab ? '' : ` (skipped: ${labSkipReason})`}`, () => {
  const hosts: string[] = lab ? Object.keys(JSON.parse(readFileSync(inventoryPath(), 'utf8')).hosts) : [];
  const labKey: string = lab ? JSON.parse(readFileSync(inventoryPath(), 'utf8')).cache.publicKey : '';

  it('--goal build builds each toplevel once, pins it and has it served signed; no host changes', async () => {
    // Every host runs a known revision first, so "unchanged" is something to keep.
    await newGeneration('e2e-prebuild-base');
    const base = await runScript('deploy-all', ['--json']);
    expect(base.exitCode, base.stderr).toBe(0);
    await newGeneration('e2e-prebuild');
    const before = hostState(hosts);
    for (const host of hosts) expect(before[host]!.current).toContain(toplevelName(host, 'e2e-prebuild-base'));
    const run = await runScript('deploy-all', ['--goal', 'build', '--json']);
    expect(run.exitCode, run.stderr).toBe(0);
    const { report } = run.json;
    expect(report.goal).toBe('build');
    expect(report.verdict).toBeUndefined();
    expect(report.stages.map((s: { name: string; outcome: string }) => [s.name, s.outcome])).toEqual([
      ['preflight', 'success'], ['evaluate', 'success'], ['seed-build', 'success'], ['wait-for-cache', 'success'],
    ]);
    expect(report.hosts.map((h: { name: string; state: string }) => [h.name, h.state])).toEqual(hosts.map((h) => [h, 'built']));

    // builds.log: the kernel once, on the seed; each toplevel once, on one of the opis (Nix places them across the builders).
    const built = buildsOf('e2e-prebuild');
    expect(built.filter((b) => b.name === kernelName('e2e-prebuild'))).toEqual([{ host: 'opi03', name: kernelName('e2e-prebuild') }]);
    expect(built.map((b) => b.name).sort()).toEqual([kernelName('e2e-prebuild'), ...hosts.map((h) => toplevelName(h, 'e2e-prebuild'))].sort());
    expect(built.every((b) => hosts.includes(b.host))).toBe(true);
    // The report names what Nix built where, with how long it took.
    expect(report.builds.length).toBe(hosts.length + 1);
    const builders = hosts.map((h) => `ssh://nix-builder@${hostAddress(h)}`);
    for (const b of report.builds) {
      expect(builders).toContain(b.machine);
      expect(b.durationMs).toBeGreaterThan(0);
    }

    // Every toplevel in hawk's store, pinned, and served signed with the lab key (real Nix verifies).
    for (const host of report.hosts as { name: string; toplevel: string }[]) {
      expect(existsSync(host.toplevel), host.name).toBe(true);
      expect(pinned(host.toplevel), host.name).toBe(true);
      const verify = await asHawk(['nix', 'store', 'verify', '--store', CACHE, '--option', 'trusted-public-keys', labKey, '--sigs-needed', '1', host.toplevel]);
      expect(verify.exitCode, verify.stderr).toBe(0);
    }

    // Nothing changed on any host: profile, running system, activations (read inside the hosts).
    expect(hostState(hosts)).toEqual(before);
  });

  it('deploy-all of the same revision then builds nothing and deploys every host', async () => {
    const buildsBefore = buildsOf('e2e-prebuild').length;
    expect(buildsBefore).toBeGreaterThan(0);
    const run = await runScript('deploy-all', []);
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(buildsOf('e2e-prebuild')).toHaveLength(buildsBefore);
    // The seed build's title and the report's builds line both say so.
    expect(run.stdout).toMatch(/aarch64-linux on opi03: nothing to build, all in the store already/);
    expect(run.stdout).toMatch(/^nothing built: every toplevel was in the store already \(seed build \d+\.\ds\)$/m);
    const reportPath = /report: (\S+\.json)/.exec(run.stdout)?.[1];
    expect(reportPath, run.stdout).toBeDefined();
    const report = JSON.parse(readFileSync(reportPath!, 'utf8'));
    expect(report.goal).toBe('switch');
    expect(report.builds).toEqual([]);
    for (const host of report.hosts as { name: string; state: string; effect: string; toplevel: string }[]) {
      expect([host.name, host.state, host.effect]).toEqual([host.name, 'deployed', 'switched']);
      expect(host.toplevel).toContain(toplevelName(host.name, 'e2e-prebuild'));
      expect(systemProfile(host.name)).toBe(host.toplevel);
      expect(currentSystem(host.name)).toBe(host.toplevel);
    }
    const seed = report.stages.find((s: { name: string }) => s.name === 'seed-build');
    console.info(`deploy-all after the prebuild: total ${report.totalMs} ms, seed build ${seed.durationMs} ms`);
  });

  it('--goal build --dry-run prints a plan that stops after the cache wait, and runs nothing', async () => {
    await newGeneration('e2e-prebuild-plan');
    const run = await runScript('deploy-all', ['--goal', 'build', '--dry-run']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^plan: build .* then stop — no host is deployed$/m);
    expect(run.stdout).toContain('4. wait for cache');
    expect(run.stdout).toContain('the run stops after the cache wait: nothing is deployed, no host is touched');
    expect(run.stdout).not.toMatch(/nixos-rebuild|5\. deploy|deploy@/);
    expect(buildsOf('e2e-prebuild-plan')).toEqual([]);
  });

  it('a target whose sshd is down does not fail a prebuild', async () => {
    await newGeneration('e2e-prebuild-down');
    await fault('sshd-down', 'opi01');
    try {
      const before = hostState(['opi02', 'opi03']);
      const run = await runScript('deploy-all', ['--goal', 'build', '--json']);
      expect(run.exitCode, run.stderr).toBe(0);
      expect(run.json.report.hosts.map((h: { name: string; state: string }) => [h.name, h.state])).toEqual(hosts.map((h) => [h, 'built']));
      expect(buildsOf('e2e-prebuild-down').map((b) => b.name)).toContain(toplevelName('opi01', 'e2e-prebuild-down'));
      expect(hostState(['opi02', 'opi03'])).toEqual(before);
      // The same revision's deploy does need opi01: its preflight refuses while opi01's sshd is down.
      const deploy = await runScript('deploy-all', ['--json']);
      expect(deploy.exitCode).toBe(1);
      expect(deploy.json.report.stages.find((s: { name: string }) => s.name === 'preflight').outcome).toBe('failed');
    } finally {
      await fault('sshd-up', 'opi01');
    }
  });
});
