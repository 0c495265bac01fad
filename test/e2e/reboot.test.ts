/**
 * `deploy-all --goal boot --reboot --rolling` against the lab's systemd hosts,
 * which reboot for real (systemctl reboot in the container, nspawn exits 133,
 * the supervisor boots it again, the lab bootloader activates the profile's
 * default generation). Whether a host really rebooted is read inside it, never
 * over SSH: a marker this test leaves in its /run (a tmpfs that a reboot
 * replaces) and the PID of its systemd.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { currentSystem, hostPath, inHost, lab, labSkipReason, leaderPid, newGeneration, runScript, systemProfile } from './lab.ts';

type HostRow = { name: string; state: string; generation: string; effect?: string; toplevel?: string; previousToplevel?: string; note?: string };
const OPIS = ['opi01', 'opi02', 'opi03'];
const TEST_MARKER = '/run/avalanche-lab-reboot-test';

const states = (report: { hosts: HostRow[] }) => report.hosts.map((h) => [h.name, h.state, h.generation]);
const row = (report: { hosts: HostRow[] }, host: string) => report.hosts.find((h) => h.name === host)!;

/** Leaves the test's marker in each host's /run and returns each host's systemd PID (as seen here). */
async function markBoots(hosts: readonly string[]): Promise<Record<string, number>> {
  const pids: Record<string, number> = {};
  for (const host of hosts) {
    const touched = await inHost(host, ['touch', TEST_MARKER]);
    expect(touched.exitCode, touched.stderr).toBe(0);
    pids[host] = leaderPid(host)!;
  }
  return pids;
}

/** Whether the host booted since markBoots: its /run is new (the marker gone) and its systemd is another process. */
async function rebootedSince(host: string, pids: Record<string, number>): Promise<boolean> {
  const marker = await inHost(host, ['test', '-e', TEST_MARKER]);
  return marker.exitCode !== 0 && leaderPid(host) !== pids[host];
}

/** What the host booted and runs, and whether its app runs: read inside it. */
async function bootState(host: string) {
  const booted = await inHost(host, ['readlink', '-f', '/run/booted-system']);
  const app = await inHost(host, ['systemctl', 'is-active', 'lab-app.service']);
  return { booted: booted.stdout.trim(), current: currentSystem(host), app: app.stdout.trim() };
}

/** The lab bootloader's log on the host: `<epoch> booted|failed <toplevel>`. */
function bootLog(host: string): { what: string; toplevel: string }[] {
  try {
    return readFileSync(hostPath(host, 'var/lib/lab/boots.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [, what, toplevel] = line.split(' ');
        return { what: what!, toplevel: toplevel! };
      });
  } catch {
    return [];
  }
}

describe.skipIf(!lab)(`--goal boot --reboot${lab ? '' : ` (skipped: ${labSkipReason})`}`, () => {
  let good: Record<string, string>;

  it('reboots every host in rolling waves into its new generation: booted, running, health-checked', async () => {
    await newGeneration('rbt1');
    const pids = await markBoots(OPIS);
    const run = await runScript('deploy-all', ['--goal', 'boot', '--reboot', '--rolling', '--json']);
    expect(run.exitCode, run.stderr).toBe(0);
    const report = run.json.report;
    expect(report).toMatchObject({ operation: 'deploy', goal: 'boot', outcome: 'success' });
    expect(states(report)).toEqual(OPIS.map((h) => [h, 'deployed', 'new']));
    good = Object.fromEntries(report.hosts.map((h: HostRow) => [h.name, h.toplevel!]));
    for (const host of OPIS) {
      expect(row(report, host)).toMatchObject({ effect: 'rebooted' });
      expect(row(report, host).note).toMatch(new RegExp(`^rebooted into ${good[host]} in \\d+ s`));
      expect(await rebootedSince(host, pids), `${host} rebooted`).toBe(true);
      expect(await bootState(host)).toEqual({ booted: good[host], current: good[host], app: 'active' });
      expect(systemProfile(host)).toBe(good[host]);
      expect(bootLog(host).at(-1)).toEqual({ what: 'booted', toplevel: good[host] });
    }
  });

  it('a host that boots the old generation fails its wave: boot default set back, the rollout stops, later waves untouched', async () => {
    expect(good, 'the first scenario deployed the fleet').toBeDefined();
    // Waves: the seed opi03, then opi01 (whose new system does not boot), then opi02.
    await newGeneration('rbt2', { bootFallsBack: ['opi01'] });
    const pids = await markBoots(OPIS);
    const run = await runScript('deploy-all', ['--goal', 'boot', '--reboot', '--rolling', '--json']);
    expect(run.exitCode, run.stderr).toBe(1);
    const report = run.json.report;
    expect(states(report)).toEqual([
      ['opi01', 'rolled-back', 'previous'],
      ['opi02', 'not-started', 'previous'],
      ['opi03', 'deployed', 'new'],
    ]);
    const fresh = row(report, 'opi01').toplevel!;
    expect(fresh).not.toBe(good.opi01);
    // What is known: which host, what it booted against what was expected, how long it was waited for.
    expect(run.json.error.message).toMatch(/^opi01: did not boot the new generation\n/);
    expect(run.json.error.message).toContain(`it booted ${good.opi01} instead of ${fresh} (back after `);
    expect(run.json.error.message).toContain('not started: opi02');
    expect(row(report, 'opi01').note).toMatch(/^rolled back: it booted \S+ instead of \S+ \(back after \d+ s\); its boot default is what it runs again$/);
    expect(row(report, 'opi01').note).toContain(`it booted ${good.opi01} instead of ${fresh}`);

    // opi01 really rebooted, fell back, and its boot default is the generation it runs again.
    expect(await rebootedSince('opi01', pids)).toBe(true);
    expect(bootLog('opi01').slice(-2)).toEqual([
      { what: 'failed', toplevel: fresh },
      { what: 'booted', toplevel: good.opi01 },
    ]);
    expect(await bootState('opi01')).toEqual({ booted: good.opi01, current: good.opi01, app: 'active' });
    expect(systemProfile('opi01')).toBe(good.opi01);

    // The seed's wave went through; the wave after the failure was neither deployed nor rebooted.
    expect(await rebootedSince('opi03', pids)).toBe(true);
    expect(await bootState('opi03')).toEqual({ booted: row(report, 'opi03').toplevel, current: row(report, 'opi03').toplevel, app: 'active' });
    expect(await rebootedSince('opi02', pids)).toBe(false);
    expect(systemProfile('opi02')).toBe(good.opi02);
    expect(await bootState('opi02')).toEqual({ booted: good.opi02, current: good.opi02, app: 'active' });
  });
});
