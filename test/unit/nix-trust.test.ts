/**
 * Reading Nix's configuration (feature detection of `nix config show`) and
 * the trust probe, against a recording executor answering as Nix does, and
 * once against the real Nix on this machine when there is one.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { ZxExecutor } from '../../lib/exec/zx-executor.ts';
import { CONFIG_SHOW_ARGV, isUnknownSubcommand, parseNixSettings, readNixConfig, SHOW_CONFIG_ARGV, stringListSetting } from '../../lib/nix/config.ts';
import { probeNixTrust } from '../../lib/nix/trust.ts';
import { CONFIG_SHOW_UNKNOWN } from '../helpers/doctor-fleet.ts';
import { RecordingExecutor, type Responder, type ScriptedResponse } from '../helpers/recording-executor.ts';

const NIX = ['nix', '--extra-experimental-features', 'nix-command'];
const is = (argv: readonly string[], response: ScriptedResponse): Responder => (spec) =>
  spec.argv.join(' ') === argv.join(' ') ? response : undefined;
const result = (r: ScriptedResponse) => ({ exitCode: r.exitCode ?? 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '', timedOut: false });

// Hand-written in the shape of `nix config show --json`: every setting an object with its value.
function settings(values: Record<string, unknown>): ScriptedResponse {
  return { stdout: JSON.stringify(Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { value: v, defaultValue: v, description: '…' }]))) };
}

describe('reading Nix\'s configuration', () => {
  it('knows "not a recognised command" (Nix 2.8, real text) from other failures', () => {
    expect(isUnknownSubcommand(result(CONFIG_SHOW_UNKNOWN))).toBe(true);
    expect(isUnknownSubcommand(result({ exitCode: 1, stderr: "\u001b[31;1merror:\u001b[0m unrecognised command 'config'" }))).toBe(true);
    expect(isUnknownSubcommand(result({ exitCode: 1, stderr: 'error: experimental Nix feature \'nix-command\' is disabled' }))).toBe(false);
    expect(isUnknownSubcommand(result({ exitCode: 255, stderr: 'ssh: connect to host opi01.internal port 22: Connection refused' }))).toBe(false);
    expect(isUnknownSubcommand(result({ exitCode: 0, stdout: '{}' }))).toBe(false);
  });

  it('tries nix config show, then nix show-config only when the first is unknown', async () => {
    const asked: string[] = [];
    const runs = await readNixConfig(async (argv) => {
      asked.push(argv.join(' '));
      return { result: { ...result(argv.includes('config') ? CONFIG_SHOW_UNKNOWN : settings({ system: 'x86_64-linux' })), argv, signal: null, startedAt: 0, durationMs: 0, aborted: false } };
    });
    expect(asked).toEqual([CONFIG_SHOW_ARGV.join(' '), SHOW_CONFIG_ARGV.join(' ')]);
    expect(runs).toHaveLength(2);
    expect(CONFIG_SHOW_ARGV).toEqual([...NIX, 'config', 'show', '--json']);
  });

  it('reads values, and lists given as lists or as words', () => {
    const parsed = parseNixSettings(settings({ 'trusted-users': ['root', '@wheel'], 'extra-platforms': 'aarch64-linux  i686-linux', cores: 4 }).stdout!);
    expect(stringListSetting(parsed, 'trusted-users')).toEqual(['root', '@wheel']);
    expect(stringListSetting(parsed, 'extra-platforms')).toEqual(['aarch64-linux', 'i686-linux']);
    expect(stringListSetting(parsed, 'absent')).toEqual([]);
    expect(() => parseNixSettings('[]')).toThrow(/did not print an object/);
  });
});

describe('the trust probe', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /** A state directory this user cannot write (a file stands in for it) and an existing daemon socket: Nix's "auto" picks the daemon. */
  function daemonHere() {
    dir = mkdtempSync(join(tmpdir(), 'avalanche-trust-'));
    writeFileSync(join(dir, 'socket'), '');
    return { stateDir: join(dir, 'missing-state-dir'), daemonSocket: join(dir, 'socket') };
  }

  const storeInfoUnknown = is([...NIX, 'store', 'info', '--json'], { exitCode: 1, stderr: "error: 'info' is not a recognised command\n" });
  const storePingNoJson = is([...NIX, 'store', 'ping', '--json'], { exitCode: 1, stderr: "error: unrecognised flag '--json'\n" });

  it('takes nix store info\'s answer (Nix 2.19 on) and asks nothing else', async () => {
    const executor = new RecordingExecutor([is([...NIX, 'store', 'info', '--json'], { stdout: '{"trusted":0,"url":"daemon","version":"2.26.3"}' })]);
    const trust = await probeNixTrust(executor, 5000, { user: 'ci' });
    expect(trust).toEqual({ trusted: false, how: 'nix store info --json: "trusted": 0 (store daemon)', user: 'ci' });
    expect(executor.calls).toHaveLength(1);
    expect(executor.calls[0]!.timeoutMs).toBe(5000);
  });

  it('falls back to nix store ping --json (Nix 2.15 to 2.18)', async () => {
    const executor = new RecordingExecutor([storeInfoUnknown, is([...NIX, 'store', 'ping', '--json'], { stdout: '{"trusted":1,"url":"daemon","version":"2.18.1"}' })]);
    expect(await probeNixTrust(executor, 5000, { user: 'ci' })).toEqual({ trusted: true, how: 'nix store ping --json: "trusted": 1 (store daemon)', user: 'ci' });
  });

  it('then to trusted-users for a daemon store: the user, *, or one of the user\'s groups', async () => {
    const config = (trustedUsers: string[]): Responder[] => [
      storeInfoUnknown,
      storePingNoJson,
      is(CONFIG_SHOW_ARGV, CONFIG_SHOW_UNKNOWN),
      is(SHOW_CONFIG_ARGV, settings({ store: 'auto', 'trusted-users': trustedUsers })),
      is(['id', '-Gn', 'ci'], { stdout: 'ci users deployers\n' }),
    ];
    const at = daemonHere();
    const ask = async (users: string[]) => probeNixTrust(new RecordingExecutor(config(users)), 5000, { user: 'ci', ...at });
    expect(await ask(['root', 'ci'])).toEqual({ trusted: true, how: 'trusted-users = root ci: names ci', user: 'ci' });
    expect(await ask(['*'])).toMatchObject({ trusted: true, how: 'trusted-users = *: * trusts everyone' });
    expect(await ask(['root', '@deployers'])).toMatchObject({ trusted: true, how: 'trusted-users = root @deployers: names @deployers, a group of ci' });
    const untrusted = await ask(['root', '@wheel']);
    expect(untrusted).toMatchObject({ trusted: false });
    expect(untrusted.how).toBe('trusted-users = root @wheel: names neither ci, * nor a group of ci (groups ci users deployers); the daemon ignores --builders');
  });

  it('a store that is not a daemon is trusted (root on a single-user store)', async () => {
    const executor = new RecordingExecutor([storeInfoUnknown, storePingNoJson, is(CONFIG_SHOW_ARGV, settings({ store: 'local', 'trusted-users': ['root'] }))]);
    const trust = await probeNixTrust(executor, 5000, { user: 'someone' });
    expect(trust).toEqual({ trusted: true, how: 'store local is not a daemon: its owner is trusted (nix config show --json)', user: 'someone' });
    expect(executor.calls.map((c) => c.argv.slice(3).join(' '))).toEqual(['store info --json', 'store ping --json', 'config show --json']);
  });

  it('says unknown, with what it tried, when nothing answers', async () => {
    const down = (argv: readonly string[]) => is(argv, { exitCode: 1, stderr: 'error: cannot connect to socket at \'/nix/var/nix/daemon-socket/socket\': Connection refused\n' });
    const executor = new RecordingExecutor([
      down([...NIX, 'store', 'info', '--json']),
      down([...NIX, 'store', 'ping', '--json']),
      is(CONFIG_SHOW_ARGV, { exitCode: 1, stderr: "error: syntax error in configuration line 'x' in '/etc/nix/nix.conf'\n" }),
    ]);
    const trust = await probeNixTrust(executor, 5000, { user: 'ci' });
    expect(trust.trusted).toBe('unknown');
    expect(trust.how).toBe(
      "nix store info --json: exited with 1 (error: cannot connect to socket at '/nix/var/nix/daemon-socket/socket': Connection refused); " +
        "nix store ping --json: exited with 1 (error: cannot connect to socket at '/nix/var/nix/daemon-socket/socket': Connection refused); " +
        "nix config show --json: exited with 1 (error: syntax error in configuration line 'x' in '/etc/nix/nix.conf')",
    );
  });

  const hasNix = spawnSync('nix', ['--version']).status === 0;
  it.skipIf(!hasNix)('answers on this machine\'s real Nix', async () => {
    const trust = await probeNixTrust(new ZxExecutor(), 30_000);
    expect(typeof trust.trusted === 'boolean' || trust.trusted === 'unknown').toBe(true);
    expect(trust.how).not.toBe('');
    // root is trusted by a single-user store and by a daemon's default trusted-users alike.
    if (process.getuid?.() === 0) expect(trust).toMatchObject({ trusted: true, user: 'root' });
  });
});
