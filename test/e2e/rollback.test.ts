/**
 * `rollback` against the lab's systemd hosts (non-root deploy user, sudo -n,
 * the watchdog, health checks): back one generation, to a generation by
 * number, a whole run by its id, and a rollback whose switch fails being
 * rolled back itself. Each scenario starts from fleet revisions of its own.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { activations, currentSystem, hostPath, inHost, lab, labSkipReason, newGeneration, runScript, systemProfile } from './lab.ts';

type HostRow = { name: string; state: string; generation: string; effect?: string; toplevel?: string; previousToplevel?: string; note?: string };
const OPIS = ['opi01', 'opi02', 'opi03'];
const PROFILES = 'nix/var/nix/profiles';

/** Each host's toplevel in a run's JSON report. */
const toplevels = (report: { hosts: HostRow[] }) => Object.fromEntries(report.hosts.map((h) => [h.name, h.toplevel!]));
const row = (report: { hosts: HostRow[] }, host: string) => report.hosts.find((h) => h.name === host)!;

/** The host's system generations as its profile directory holds them: number → link target's store path. */
function generationLinks(host: string): Map<number, string> {
  const dir = hostPath(host, PROFILES);
  const links = readdirSync(dir).flatMap((name) => {
    const match = /^system-(\d+)-link$/.exec(name);
    return match ? [[Number(match[1]), readlinkSync(`${dir}/${name}`)] as const] : [];
  });
  return new Map(links);
}

/** What the profile link itself says (system-N-link): a rollback moves it, it makes no new generation. */
const profileLink = (host: string) => readlinkSync(hostPath(host, PROFILES, 'system'));

async function deployAll(label: string, options: Parameters<typeof newGeneration>[1] = {}) {
  await newGeneration(label, options);
  const run = await runScript('deploy-all', ['--json']);
  expect(run.exitCode, run.stderr).toBe(0);
  return run.json.report as { id: string; hosts: HostRow[] };
}

describe.skipIf(!lab)(`rollback${lab ? '' : ` (skipped: ${labSkipReason})`}`, () => {
  // Two fleet revisions deployed, shared by the scenarios (in order: each starts where the last ended).
  let first: Awaited<ReturnType<typeof deployAll>>;
  let second: Awaited<ReturnType<typeof deployAll>>;

  it('goes back one generation: profile and running system, health-checked, confirmed, reported; no new generation', async () => {
    first = await deployAll('rb1');
    second = await deployAll('rb2');
    const [old, now] = [toplevels(first), toplevels(second)];
    const before = generationLinks('opi01');
    expect(systemProfile('opi01')).toBe(now.opi01);

    const run = await runScript('rollback', ['opi01', '--json']);
    expect(run.exitCode, run.stderr).toBe(0);
    const report = run.json.report;
    expect(report).toMatchObject({ operation: 'rollback', goal: 'switch', outcome: 'success' });
    expect(report.stages.map((s: { name: string; outcome: string }) => [s.name, s.outcome])).toEqual([
      ['preflight', 'success'],
      ['resolve', 'success'],
      ['deploy', 'success'],
    ]);
    expect(row(report, 'opi01')).toMatchObject({ state: 'deployed', generation: 'new', effect: 'switched', toplevel: old.opi01, previousToplevel: now.opi01 });
    expect(report.hosts.map((h: HostRow) => h.name)).toEqual(['opi01']);
    expect({ profile: systemProfile('opi01'), current: currentSystem('opi01') }).toEqual({ profile: old.opi01, current: old.opi01 });
    // Back to the generation that holds the old toplevel, as nixos-rebuild --rollback does: the same links, the profile moved.
    expect(generationLinks('opi01')).toEqual(before);
    const previousNumber = Math.max(...[...before].filter(([, path]) => path === old.opi01).map(([n]) => n));
    expect(profileLink('opi01')).toBe(`system-${previousNumber}-link`);
    expect(activations('opi01').at(-1)).toEqual({ goal: 'switch', toplevel: old.opi01 });
    expect((await inHost('opi01', ['systemctl', 'is-active', 'lab-app.service'])).stdout.trim()).toBe('active');
    // The deploy's safety steps ran: the watchdog armed and confirmed, the health checks on the host.
    const ran = report.commands.map((c: { argv: string[] }) => c.argv.join(' '));
    expect(ran.some((c: string) => c.includes('avalanche-arm'))).toBe(true);
    expect(ran.some((c: string) => c.includes('avalanche-confirm'))).toBe(true);
    expect(ran.some((c: string) => c.includes('systemctl is-system-running'))).toBe(true);
    // The others were not touched.
    for (const host of ['opi02', 'opi03']) expect(currentSystem(host)).toBe(now[host]);

    // --to <n>: forward again, to the generation that holds the newer toplevel.
    const newerNumber = Math.max(...[...before].filter(([, path]) => path === now.opi01).map(([n]) => n));
    const forward = await runScript('rollback', ['opi01', '--to', String(newerNumber), '--json']);
    expect(forward.exitCode, forward.stderr).toBe(0);
    expect({ profile: systemProfile('opi01'), current: currentSystem('opi01') }).toEqual({ profile: now.opi01, current: now.opi01 });
    expect(profileLink('opi01')).toBe(`system-${newerNumber}-link`);
  });

  it('--run <id> reverts every host that run changed to what it found there', async () => {
    // The second deploy changed every host (opi01 went back and forward again above).
    const run = await runScript('rollback', ['--run', second.id, '--json']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.json.report.hosts.map((h: HostRow) => [h.name, h.state, h.toplevel])).toEqual(OPIS.map((h) => [h, 'deployed', toplevels(first)[h]]));
    for (const host of OPIS) expect({ profile: systemProfile(host), current: currentSystem(host) }).toEqual({ profile: toplevels(first)[host], current: toplevels(first)[host] });
    // Reverting that rollback (a run too) brings the second revision back.
    const again = await runScript('rollback', ['--run', run.json.report.id, '--exclude', 'opi02', '--json']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.json.report.hosts.map((h: HostRow) => h.name)).toEqual(['opi01', 'opi03']);
    expect(currentSystem('opi01')).toBe(toplevels(second).opi01);
    expect(currentSystem('opi02')).toBe(toplevels(first).opi02);
  });

  it('a rollback whose switch fails is rolled back itself and reported like a deploy; a missing generation fails before any host changes', async () => {
    // Where the hosts are now (after the scenarios above): opi02 runs the first revision, the others the second.
    const running = Object.fromEntries(OPIS.map((h) => [h, currentSystem(h)!]));
    expect(running).toEqual({ opi01: second.hosts[0]!.toplevel, opi02: first.hosts[1]!.toplevel, opi03: second.hosts[2]!.toplevel });
    // A revision whose activation fails on opi02: the deploy rolls it back, but its generation link stays.
    await newGeneration('rb6', { failActivation: ['opi02'] });
    const failed = await runScript('deploy', ['opi02', '--json']);
    expect(failed.exitCode).toBe(1);
    expect(row(failed.json.report, 'opi02')).toMatchObject({ state: 'rolled-back', generation: 'previous' });
    const broken = row(failed.json.report, 'opi02').toplevel!;
    const brokenNumber = Math.max(...[...generationLinks('opi02')].filter(([, path]) => path === broken).map(([n]) => n));
    const linkBefore = profileLink('opi02');

    const run = await runScript('rollback', ['opi02', '--to', String(brokenNumber), '--json']);
    expect(run.exitCode).toBe(1);
    expect(row(run.json.report, 'opi02')).toMatchObject({ state: 'rolled-back', generation: 'previous' });
    expect(run.stdout + run.stderr).not.toMatch(/\n\s+at /);
    expect({ profile: systemProfile('opi02'), current: currentSystem('opi02') }).toEqual({ profile: running.opi02, current: running.opi02 });
    expect(profileLink('opi02')).toBe(linkBefore);

    const missing = await runScript('rollback', ['@opi', '--to', '9999', '--json']);
    expect(missing.exitCode).toBe(1);
    expect(missing.json.error.message).toMatch(/has no generation 9999 \(generations: \d/);
    expect(missing.json.report.stages.find((s: { name: string }) => s.name === 'deploy').outcome).toBe('not-started');
    for (const host of OPIS) expect(currentSystem(host)).toBe(running[host]);
  });

  it('--dry-run prints the exact commands and changes nothing; selectors pick what they say', async () => {
    const before = OPIS.map((h) => currentSystem(h));
    const dry = await runScript('rollback', ['--on', 'opi0*', '--exclude', 'opi02', '--dry-run', '--json']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.json.plan.hosts).toEqual(['opi01', 'opi03']);
    const text = await runScript('rollback', ['opi03', '--to', '1', '--dry-run']);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toContain('2. resolve');
    expect(text.stdout).toContain('opi03: generation 1');
    expect(text.stdout).toContain("avalanche-switch /nix/var/nix/profiles/system '\\''{{generation:opi03}}'\\'' '\\''{{toplevel:opi03}}'\\'' switch");
    expect(OPIS.map((h) => currentSystem(h))).toEqual(before);
  });
});
