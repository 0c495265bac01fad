/**
 * `generations` against the lab: what it lists must be what the hosts'
 * /nix/var/nix/profiles and /run really hold (read inside each host, not over
 * SSH), after two deploys and a reboot of one host between them; a host
 * whose sshd is down is shown failed while the others are listed; --on and
 * --exclude select.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/fixtures.ts';
import { fault, inHost, inventoryPath, lab, labSkipReason, newGeneration, runOnCoordinator, runScript } from './lab.ts';

const HOSTS = ['opi01', 'opi02', 'opi03'];
const PROFILES = '/nix/var/nix/profiles';

/** Runs scripts/generations.ts as avl on the coordinator against the lab inventory. */
async function generations(args: readonly string[]) {
  const result = await runOnCoordinator([join(repoRoot, 'node_modules/.bin/tsx'), join(repoRoot, 'scripts/generations.ts'), '--inventory', inventoryPath(), ...args], 90_000);
  return { ...result, json: args.includes('--json') ? JSON.parse(result.stdout) : undefined };
}

/** A path's target inside the host (readlink, or readlink -f with `follow`), as root; undefined when it does not exist. */
async function readLink(host: string, path: string, follow = false): Promise<string | undefined> {
  const result = await inHost(host, follow ? ['readlink', '-e', path] : ['readlink', path]);
  return result.exitCode === 0 ? result.stdout.trim() : undefined;
}

/** What the host itself holds: every system-N-link with its store path, the profile's link, the running and booted systems. */
async function onHost(host: string) {
  const listed = await inHost(host, ['ls', '-1', PROFILES]);
  expect(listed.exitCode, listed.stderr).toBe(0);
  const numbers = listed.stdout
    .split('\n')
    .map((name) => /^system-(\d+)-link$/.exec(name)?.[1])
    .filter((n) => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  const toplevels = await Promise.all(numbers.map((n) => readLink(host, `${PROFILES}/system-${n}-link`)));
  return {
    generations: numbers.map((number, i) => ({ number, toplevel: toplevels[i]! })),
    profileLink: await readLink(host, `${PROFILES}/system`),
    current: await readLink(host, '/run/current-system', true),
    booted: await readLink(host, '/run/booted-system', true),
  };
}

type Listed = { number: number; createdAt: string; toplevel: string; bootDefault: boolean; current: boolean; booted: boolean };

describe.skipIf(!lab)(`generations in the lab${lab ? '' : ` (skipped: ${labSkipReason})`}`, () => {
  const toplevels: Record<string, { first: string; second: string }> = {};
  let startedAt: number;

  beforeAll(async () => {
    startedAt = Date.now() - 1000;
    const deployed = async (label: string) => {
      await newGeneration(label);
      const run = await runScript('deploy-all', ['--json']);
      expect(run.exitCode, run.stderr).toBe(0);
      return Object.fromEntries(run.json.report.hosts.map((h: { name: string; toplevel: string }) => [h.name, h.toplevel])) as Record<string, string>;
    };
    const first = await deployed('gen-1');
    // Booted on the first: the lab's boot activation links /run/booted-system, as NixOS's stage 2 does.
    await fault('reboot', 'opi01');
    const second = await deployed('gen-2');
    for (const host of HOSTS) toplevels[host] = { first: first[host]!, second: second[host]! };
  });

  it('lists exactly the generations the hosts hold, the second deploy current and boot default, opi01 booted on the first', async () => {
    const run = await generations(['--json']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.json.hosts.map((h: { host: string; ok: boolean }) => [h.host, h.ok])).toEqual(HOSTS.map((h) => [h, true]));
    for (const listed of run.json.hosts) {
      const host: string = listed.host;
      const real = await onHost(host);
      const gens: Listed[] = listed.generations;
      // What the host holds, number for number and path for path.
      expect(gens.map((g) => ({ number: g.number, toplevel: g.toplevel })), host).toEqual(real.generations);
      expect(`system-${listed.profileGeneration}-link`, host).toBe(real.profileLink);
      expect(listed.currentSystem, host).toBe(real.current);
      expect(listed.bootedSystem, host).toBe(real.booted);
      for (const g of gens) {
        expect(g.bootDefault, `${host} ${g.number}`).toBe(`system-${g.number}-link` === real.profileLink);
        expect(g.current, `${host} ${g.number}`).toBe(g.toplevel === real.current);
        expect(g.booted, `${host} ${g.number}`).toBe(real.booted !== undefined && g.toplevel === real.booted);
      }
      // The two deploys: the last two generations, the second running and the boot default.
      expect(gens.length, host).toBeGreaterThanOrEqual(2);
      const [before, last] = gens.slice(-2) as [Listed, Listed];
      expect(before.toplevel, host).toBe(toplevels[host]!.first);
      expect(last).toMatchObject({ toplevel: toplevels[host]!.second, current: true, bootDefault: true, booted: false });
      expect(gens.filter((g) => g.current).map((g) => g.number), host).toEqual([last.number]);
      // Made during this test, in order.
      for (const g of [before, last]) expect(Date.parse(g.createdAt), host).toBeGreaterThanOrEqual(startedAt);
      expect(Date.parse(last.createdAt)).toBeGreaterThanOrEqual(Date.parse(before.createdAt));
      expect(Date.parse(last.createdAt)).toBeLessThanOrEqual(Date.now() + 1000);
    }
    const opi01 = run.json.hosts.find((h: { host: string }) => h.host === 'opi01');
    expect(opi01.bootedSystem).toBe(toplevels.opi01!.first);
    expect(opi01.generations.filter((g: Listed) => g.booted).map((g: Listed) => g.toplevel)).toEqual([toplevels.opi01!.first]);

    // The text view: one table per host, the flags beside the generations.
    const text = await generations([]);
    expect(text.exitCode, text.stderr).toBe(0);
    // Columns are padded to the longest toplevel the host has: any run of spaces.
    expect(text.stdout).toMatch(new RegExp(`${toplevels.opi01!.first} +booted\\n`));
    expect(text.stdout).toMatch(new RegExp(`${toplevels.opi03!.second} +current, boot default\\n`));
    expect(text.stdout.trimEnd()).toMatch(/generations: 3 of 3 hosts answered$/);
  });

  it('a host whose sshd is down is shown failed with ssh\'s reason, the others still listed; exit 1', async () => {
    await fault('sshd-down', 'opi02');
    try {
      const run = await generations(['--json']);
      expect(run.exitCode).toBe(1);
      const [opi01, opi02, opi03] = run.json.hosts;
      expect([opi01.ok, opi03.ok]).toEqual([true, true]);
      expect(opi01.generations.at(-1).toplevel).toBe(toplevels.opi01!.second);
      expect(opi02).toMatchObject({ host: 'opi02', ok: false, error: { exitCode: 255, status: 'ssh exited with 255' } });
      expect(opi02.error.outputTail.join('\n')).toMatch(/Connection refused/);
      const text = await generations(['opi02', 'opi03']);
      expect(text.exitCode).toBe(1);
      expect(text.stdout).toMatch(/opi02 \(deploy@[^)]+\): did not answer: ssh exited with 255\n {2}\| ssh: connect to host .* Connection refused/);
      expect(text.stdout.trimEnd()).toMatch(/generations: 1 of 2 hosts answered; no answer from opi02$/);
    } finally {
      await fault('sshd-up', 'opi02');
    }
  });

  it('--on opi0* --exclude opi02 asks opi01 and opi03 only', async () => {
    const run = await generations(['--json', '--on', 'opi0*', '--exclude', 'opi02']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.json.hosts.map((h: { host: string }) => h.host)).toEqual(['opi01', 'opi03']);
    const unknown = await generations(['--on', 'opi09']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/opi09.*known.*opi01, opi02, opi03/);
  });
});
