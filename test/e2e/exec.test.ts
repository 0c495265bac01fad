/**
 * exec (issue 13 #5) on the real lab hosts, over real ssh and sudo: a
 * command on @opi that fails on exactly one host (exit 1, that host's status
 * told, the others' output kept); arguments arriving word for word; --sudo as
 * root, without it the deploy user; an unreachable host told as ssh's 255;
 * --timeout stopping the command on the host itself; `just nix exec`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CommandResult } from '../../lib/exec/types.ts';
import { repoRoot } from '../helpers/fixtures.ts';
import { inHost, inventoryCopy, inventoryPath, lab, labSkipReason, runOnCoordinator } from './lab.ts';

interface HostResult {
  host: string;
  outcome: string;
  exitCode: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** scripts/exec.ts as a user runs it on the coordinator. */
function exec(args: readonly string[], inventory = inventoryPath()): Promise<CommandResult> {
  return runOnCoordinator([join(repoRoot, 'node_modules/.bin/tsx'), join(repoRoot, 'scripts/exec.ts'), '--inventory', inventory, ...args]);
}

/** exec --json: its exit status and each host's result, by name. */
async function execJson(args: readonly string[], inventory?: string): Promise<{ exitCode: number | null; json: any; byHost: Record<string, HostResult> }> {
  const result = await exec(['--json', ...args], inventory);
  let json: any;
  try {
    json = JSON.parse(result.stdout);
  } catch {
    throw new Error(`exec printed no JSON (exit ${result.exitCode}):\n${result.stdout}\n${result.stderr}`);
  }
  return { exitCode: result.exitCode, json, byHost: Object.fromEntries((json.hosts ?? []).map((h: HostResult) => [h.host, h])) };
}

/** The lab's target hosts (every one is tagged opi), in inventory order. */
function labHosts(): string[] {
  return Object.keys(JSON.parse(readFileSync(inventoryPath(), 'utf8')).hosts);
}

describe.skipIf(!lab)(`exec in the lab${lab ? '' : ` (skipped: ${labSkipReason})`}`, () => {
  it('on @opi: a command failing on exactly one host exits 1, tells that host\'s status, keeps the others\' output', async () => {
    const hosts = labHosts();
    const failing = hosts[1]!;
    const argv = ['--on', '@opi', '--', 'sh', '-c', `hostname; echo "on $(hostname)" >&2; test "$(hostname)" != ${failing}`];

    const { exitCode, json, byHost } = await execJson(argv);
    expect(exitCode).toBe(1);
    expect(json).toMatchObject({ outcome: 'failed', exitCode: 1 });
    expect(Object.keys(byHost)).toEqual(hosts);
    for (const host of hosts) {
      const expected = host === failing ? { outcome: 'failed', exitCode: 1 } : { outcome: 'succeeded', exitCode: 0 };
      expect(byHost[host], host).toMatchObject({ ...expected, stdout: `${host}\n`, stderr: `on ${host}\n` });
    }

    // The same as text: live lines by host, then grouped, then the tally.
    const text = await exec(argv);
    expect(text.exitCode).toBe(1);
    const width = Math.max(...hosts.map((h) => h.length));
    for (const host of hosts) {
      expect(text.stdout).toContain(`${host.padEnd(width)} | ${host}\n`);
      expect(text.stdout).toContain(`${host.padEnd(width)} ! on ${host}\n`);
      expect(text.stdout).toMatch(new RegExp(`── ${host} \\(exit ${host === failing ? 1 : 0}, [0-9.]+ s\\) ──\\n${host}\\n! on ${host}\\n`));
    }
    expect(text.stdout).toMatch(new RegExp(`exec: ${hosts.length} hosts, ${hosts.length - 1} succeeded, 1 failed \\(${failing}\\) in [0-9.]+ s\\n?$`));
  });

  it('every argument arrives as one word, verbatim: spaces, quotes, $(…), ;, a newline, a glob, an empty word', async () => {
    const words = [`a b 'c' "d" $(hostname) \`id\` ;x`, 'two\nlines', '*', '', '$HOME \\n'];
    const { exitCode, byHost } = await execJson(['--on', 'opi01', '--', 'sh', '-c', 'printf "[%s]" "$@"', 'sh', ...words]);
    expect(exitCode).toBe(0);
    expect(byHost.opi01!.stdout).toBe(words.map((w) => `[${w}]`).join(''));
    const plain = await execJson(['--on', 'opi01', '--', 'printf', '%s\\n', words[0]!]);
    expect(plain.byHost.opi01!.stdout).toBe(`${words[0]}\n`);
  });

  it('--sudo runs as root; without it, as the deploy user', async () => {
    const root = await execJson(['--on', '@opi', '--sudo', '--', 'id', '-u']);
    expect(root.exitCode).toBe(0);
    for (const host of labHosts()) expect(root.byHost[host]!.stdout, host).toBe('0\n');
    const user = await execJson(['--on', '@opi', '--', 'id', '-un']);
    expect(user.exitCode).toBe(0);
    for (const host of labHosts()) expect(user.byHost[host]!.stdout, host).toBe('deploy\n');
  });

  it('an unreachable host is ssh\'s 255, told as such; the others still run', async () => {
    // Nothing answers at .9 on the lab bridge (hawk .1, calypso .2, the opis .11 up).
    const inventory = inventoryCopy('exec-unreachable', (json) => (json.hosts.opi01.address = '10.213.77.9'));
    const { exitCode, byHost } = await execJson(['--on', '@opi', '--', 'true'], inventory);
    expect(exitCode).toBe(1);
    expect(byHost.opi01).toMatchObject({ outcome: 'unreachable', exitCode: 255 });
    expect(byHost.opi01!.stderr).toMatch(/ssh: connect to host 10\.213\.77\.9 port 22: (No route to host|Connection timed out)/);
    for (const host of labHosts().slice(1)) expect(byHost[host]!.outcome, host).toBe('succeeded');
    const text = await exec(['--on', 'opi01', '--', 'true'], inventory);
    expect(text.stdout).toContain('── opi01 (exit 255: ssh failed (no connection or login, or it dropped), or the command exited 255,');
  });

  it('--timeout stops the command on the host itself (timeout exits 124), not only the ssh here', async () => {
    const started = Date.now();
    const { exitCode, byHost } = await execJson(['--on', 'opi01', '--timeout', '2', '--', 'sleep', '37']);
    expect(exitCode).toBe(1);
    expect(byHost.opi01).toMatchObject({ outcome: 'timed-out', exitCode: 124 });
    expect(Date.now() - started).toBeLessThan(20_000);
    const left = await inHost('opi01', ['pgrep', '-f', '^sleep 37$']);
    expect(left.exitCode, left.stdout).toBe(1);
  });

  it('as `just nix exec`, the words after -- reach the host unchanged', async () => {
    const result = await runOnCoordinator([join(repoRoot, 'node_modules/.bin/just'), '--justfile', join(repoRoot, 'justfile'), 'nix', 'exec', '--inventory', inventoryPath(), '--on', 'opi01', '--', 'printf', '%s|', 'a b', '$(id)']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain('opi01 | a b|$(id)|');
  });
});
