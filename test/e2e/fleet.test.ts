/**
 * The whole fleet in one run (issue 14): hosts of two Nix systems, each
 * system's toplevels built where they belong at the same time — aarch64 on
 * the seed opi, x86_64 on hawk (natively when the run is on hawk, over ssh as
 * a builder when it is on calypso) — and the machine the run is on deployed
 * here, without ssh, and last. The lab's fleet inventory holds the three
 * opis and calypso (x86_64), and on hawk hawk itself: a run on hawk (in its
 * lab namespaces, test/lab/hawk-ns.sh) deploys hawk here, last; a run on
 * calypso deploys calypso itself last (and leaves hawk out: over ssh it
 * would be this machine itself).
 */
import { describe, expect, it } from 'vitest';
import {
  acceptedLogins,
  activations,
  buildRecordsOf,
  coordinator,
  currentSystem,
  fleetInventoryPath,
  hawkSshConnections,
  kernelName,
  kernelNameOf,
  lab,
  labSkipReason,
  newGeneration,
  overlapped,
  runScript,
  systemProfile,
  toplevelName,
  x86KernelName,
} from './lab.ts';

type HostRow = { name: string; state: string; toplevel: string; startMs: number; durationMs: number };
type SystemBuildRow = { system: string; on: string; seed: string; outcome: string; derivations: number; startMs: number; durationMs: number };

describe.skipIf(!lab)(`the whole fleet in one run${lab ? '' : ` (skipped: ${labSkipReason})`}`, () => {
  it('two systems: x86_64 built on hawk and aarch64 on the seed at the same time, all deployed, the machine the run is on locally and last', async () => {
    // Kernels long enough that two builds started together overlap whatever ssh's start-up costs.
    await newGeneration('m1', { kernelSeconds: 3 });
    const here = coordinator();
    const calypsoLogins = acceptedLogins('calypso');
    const hawkConnections = hawkSshConnections();
    const run = await runScript('deploy-all', ['--json'], { inventory: fleetInventoryPath(), login: true });
    expect(run.exitCode, run.json?.error?.message ?? run.stderr).toBe(0);
    const report = run.json.report;

    // Where Nix built what: the lab's builds.log, written by the builds themselves.
    const built = buildRecordsOf('m1');
    const armKernel = built.filter((b) => b.name === kernelName('m1'));
    const x86Kernel = built.filter((b) => b.name === x86KernelName('m1'));
    expect(armKernel.map((b) => b.host)).toEqual(['opi03']);
    expect(x86Kernel.map((b) => b.host)).toEqual(['hawk']);
    expect(built.find((b) => b.name === toplevelName('calypso', 'm1'))?.host).toBe('hawk');
    if (here === 'hawk') expect(built.find((b) => b.name === toplevelName('hawk', 'm1'))?.host).toBe('hawk');
    expect(overlapped(armKernel[0]!, x86Kernel[0]!)).toBe(true);

    // The report's timeline: one seed build per system, side by side.
    const systemBuilds: SystemBuildRow[] = report.systemBuilds;
    expect(systemBuilds.map((b) => [b.system, b.on, b.seed, b.outcome])).toEqual([
      ['aarch64-linux', 'builders', 'opi03', 'success'],
      ['x86_64-linux', here === 'hawk' ? 'here' : 'builders', 'hawk', 'success'],
    ]);
    const [arm, x86] = systemBuilds;
    expect(arm!.startMs < x86!.startMs + x86!.durationMs && x86!.startMs < arm!.startMs + arm!.durationMs).toBe(true);
    expect(arm!.derivations).toBeGreaterThanOrEqual(4);
    // The x86_64 kernel and calypso's toplevel, and from hawk hawk's too.
    expect(x86!.derivations).toBe(here === 'hawk' ? 3 : 2);

    const hosts: HostRow[] = report.hosts;
    expect(hosts.map((h) => [h.name, h.state])).toEqual([
      ['opi01', 'deployed'],
      ['opi02', 'deployed'],
      ['opi03', 'deployed'],
      ['calypso', 'deployed'],
      ...(here === 'hawk' ? [['hawk', 'deployed']] : []),
    ]);
    for (const host of hosts) {
      expect(host.toplevel.endsWith(toplevelName(host.name, 'm1'))).toBe(true);
      expect(systemProfile(host.name)).toBe(host.toplevel);
      expect(currentSystem(host.name)).toBe(host.toplevel);
      expect(activations(host.name).at(-1)).toEqual({ goal: 'switch', toplevel: host.toplevel });
    }
    const endOf = (h: HostRow) => h.startMs + h.durationMs;

    // The machine the run is on: activated here, without ssh to itself, after every other host ended.
    const self = hosts.find((h) => h.name === here)!;
    expect(self.startMs).toBeGreaterThanOrEqual(Math.max(...hosts.filter((h) => h !== self).map(endOf)));
    const calypso = hosts.find((h) => h.name === 'calypso')!;
    if (here === 'calypso') {
      expect(acceptedLogins('calypso')).toBe(calypsoLogins);
    } else {
      expect(hawkSshConnections()).toBe(hawkConnections);
      // From hawk, calypso is a target like any other: over ssh, beside the opis after the seed.
      expect(acceptedLogins('calypso')).toBeGreaterThan(calypsoLogins);
      expect(calypso.startMs).toBeLessThan(endOf(hosts.find((h) => h.name === 'opi01')!));
    }
  });

  it('the machine the run is on deploying itself: a failed switch rolls it back here, after the others were deployed', async () => {
    const here = coordinator();
    await newGeneration('m3', { failActivation: [here] });
    const before = currentSystem(here);
    expect(before).toBeDefined();
    const run = await runScript('deploy-all', ['--json'], { inventory: fleetInventoryPath(), login: true });
    expect(run.exitCode, run.stderr).toBe(1);
    const hosts: HostRow[] = run.json.report.hosts;
    expect(hosts.map((h) => [h.name, h.state])).toEqual([
      ['opi01', 'deployed'],
      ['opi02', 'deployed'],
      ['opi03', 'deployed'],
      ['calypso', here === 'calypso' ? 'rolled-back' : 'deployed'],
      ...(here === 'hawk' ? [['hawk', 'rolled-back']] : []),
    ]);
    // The attempt, then the previous generation made the boot default again; it runs what it ran.
    expect(activations(here).slice(-2).map((a) => a.goal)).toEqual(['switch', 'boot']);
    expect(currentSystem(here)).toBe(before);
    expect(systemProfile(here)).toBe(before);
  });

  it('two boards with different kernels: Nix places them on two builders, built at the same time', async () => {
    await newGeneration('m2', { kernelSeconds: 3, boardKernels: { opi01: '6.6.1', opi02: '6.7.1' } });
    const run = await runScript('deploy', ['opi01', 'opi02', '--json']);
    expect(run.exitCode, run.stderr).toBe(0);
    const built = buildRecordsOf('m2');
    const first = built.filter((b) => b.name === kernelNameOf('6.6.1'));
    const second = built.filter((b) => b.name === kernelNameOf('6.7.1'));
    expect(first).toHaveLength(1);
    expect(second).toHaveLength(1);
    expect(first[0]!.host).not.toBe(second[0]!.host);
    expect(overlapped(first[0]!, second[0]!)).toBe(true);
    // The seed got the first derivation Nix placed; the builders are the fleet's opis.
    expect([first[0]!.host, second[0]!.host]).toContain('opi03');
    expect(run.json.report.hosts.map((h: HostRow) => [h.name, h.state])).toEqual([['opi01', 'deployed'], ['opi02', 'deployed']]);
  });
});
