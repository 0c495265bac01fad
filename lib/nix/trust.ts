/**
 * Whether the local Nix store treats the user running the orchestrator as
 * trusted — which decides whether `nix build --builders …` is obeyed: a Nix
 * daemon ignores restricted settings (`builders` among them) from users not
 * in its `trusted-users` (src/libstore/daemon.cc, `ClientSettings::apply`),
 * from Nix 2.22 with a warning, in Nix 2.4–2.21 silently.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import type { CommandResult, CommandSpec, Executor } from '../exec/types.ts';
import { CONFIG_SHOW_ARGV, nixCommandArgv, parseNixSettings, readNixConfigWith, SHOW_CONFIG_ARGV, stringListSetting, stringSetting } from './config.ts';

/** The commands {@link probeNixTrust} may run, in the order it asks them (it stops at the first that tells). */
export interface TrustProbeCommands {
  readonly storeInfo: CommandSpec;
  readonly storePing: CommandSpec;
  readonly configShow: CommandSpec;
  readonly showConfig: CommandSpec;
  /** `id -Gn <user>`: whether a group of the user's is trusted */
  readonly groups: CommandSpec;
}

/** The probe's commands for `user`, each bounded by `timeoutMs`. */
export function trustProbeCommands(user: string, timeoutMs: number): Record<keyof TrustProbeCommands, { argv: string[]; timeoutMs: number }> {
  const bounded = (argv: readonly string[]) => ({ argv: [...argv], timeoutMs });
  return {
    storeInfo: bounded(nixCommandArgv('store', 'info', '--json')),
    storePing: bounded(nixCommandArgv('store', 'ping', '--json')),
    configShow: bounded(CONFIG_SHOW_ARGV),
    showConfig: bounded(SHOW_CONFIG_ARGV),
    groups: bounded(['id', '-Gn', user]),
  };
}

export interface NixTrust {
  /** whether the store trusts `user`; 'unknown' when no probe could tell */
  readonly trusted: boolean | 'unknown';
  /** how it was found out, for a person: what was asked and what it said */
  readonly how: string;
  /** the user asked about */
  readonly user: string;
}

export interface TrustProbeOptions {
  readonly signal?: AbortSignal | undefined;
  /** the user to ask about; default: the user running this process (os.userInfo()) */
  readonly user?: string | undefined;
  /** the commands to run (a plan's); default: {@link trustProbeCommands} for the user, bounded by `timeoutMs` */
  readonly commands?: TrustProbeCommands | undefined;
  /** Nix's state directory for a store setting of "auto"; default $NIX_STATE_DIR or /nix/var/nix */
  readonly stateDir?: string | undefined;
  /** the daemon's socket; default $NIX_DAEMON_SOCKET_PATH or <stateDir>/daemon-socket/socket */
  readonly daemonSocket?: string | undefined;
}

const succeeded = (r: CommandResult) => r.exitCode === 0 && !r.timedOut && !r.aborted;

/**
 * Asks, in order, until one answer tells:
 *
 * 1. `nix store info --json` (Nix 2.19 on): `"trusted": 1` or `0` (a number
 *    in Nix, accepted as a boolean too) is the store's own answer — for a
 *    daemon store the daemon's, which is authoritative;
 * 2. `nix store ping --json`, its older name (Nix 2.15–2.18 print the same
 *    field; older ones have no --json or no field, and fall through);
 * 3. the configuration (lib/nix/config.ts: `nix config show --json`, else
 *    `nix show-config --json`): when the `store` setting is not a daemon
 *    (`local`, a path, or `auto` with Nix's state directory writable —
 *    Nix's own rule for `auto`, which picks the daemon only when the state
 *    directory is not writable and its socket exists), the user is trusted:
 *    a single-user store is its owner's (root here). For a daemon store,
 *    trusted when `trusted-users` names the user, `*`, or `@<group>` of one
 *    of the user's groups (`id -Gn`), as the daemon matches them. This reads
 *    this machine's nix.conf, which the daemon read when it started: a
 *    change since then the daemon has not seen.
 *
 * Every Nix command runs with `--extra-experimental-features nix-command`
 * and `timeoutMs` (milliseconds) each. Never throws for a failing command:
 * when nothing tells, `trusted` is 'unknown' and `how` lists what was tried.
 */
export async function probeNixTrust(executor: Executor, timeoutMs: number, options: TrustProbeOptions = {}): Promise<NixTrust> {
  const user = options.user ?? userInfo().username;
  const commands = options.commands ?? trustProbeCommands(user, timeoutMs);
  const run = (command: CommandSpec) => executor.run(command, { signal: options.signal });
  const tried: string[] = [];

  for (const command of [commands.storeInfo, commands.storePing]) {
    const what = command.argv.filter((word) => word !== '--extra-experimental-features' && word !== 'nix-command').join(' ');
    const result = await run(command);
    if (result.aborted) return { trusted: 'unknown', how: `${what}: interrupted`, user };
    const answer = succeeded(result) ? storeTrustField(result.stdout) : undefined;
    if (answer) return { trusted: answer.trusted, how: `${what}: "trusted": ${answer.raw}${answer.url ? ` (store ${answer.url})` : ''}`, user };
    tried.push(`${what}: ${succeeded(result) ? 'no "trusted" field' : failure(result)}`);
  }

  const runs = await readNixConfigWith(async (command: CommandSpec) => ({ argv: command.argv, result: await run(command) }), commands.configShow, commands.showConfig);
  const config = runs.at(-1)!;
  const what = config.argv.slice(3).join(' ');
  if (!succeeded(config.result)) return { trusted: 'unknown', how: [...tried, `nix ${what}: ${failure(config.result)}`].join('; '), user };
  let settings;
  try {
    settings = parseNixSettings(config.result.stdout);
  } catch (error) {
    return { trusted: 'unknown', how: [...tried, `nix ${what}: ${(error as Error).message}`].join('; '), user };
  }

  const store = stringSetting(settings, 'store') ?? 'auto';
  const kind = await storeKind(store, options);
  if (kind === 'other') return { trusted: 'unknown', how: [...tried, `store ${store}: neither this machine's store nor its daemon`].join('; '), user };
  if (kind === 'local') return { trusted: true, how: `store ${store} is not a daemon: its owner is trusted (nix ${what})`, user };

  const trustedUsers = stringListSetting(settings, 'trusted-users');
  const listed = `trusted-users = ${trustedUsers.join(' ') || '(empty)'}`;
  if (trustedUsers.includes('*')) return { trusted: true, how: `${listed}: * trusts everyone`, user };
  if (trustedUsers.includes(user)) return { trusted: true, how: `${listed}: names ${user}`, user };
  const groupsRun = await run(commands.groups);
  const groups = succeeded(groupsRun) ? groupsRun.stdout.trim().split(/\s+/).filter((g) => g !== '') : [];
  const group = trustedUsers.find((u) => u.startsWith('@') && groups.includes(u.slice(1)));
  if (group) return { trusted: true, how: `${listed}: names ${group}, a group of ${user}`, user };
  const groupNote = succeeded(groupsRun) ? `groups ${groups.join(' ') || '(none)'}` : `id -Gn ${user}: ${failure(groupsRun)}`;
  return { trusted: false, how: `${listed}: names neither ${user}, * nor a group of ${user} (${groupNote}); the daemon ignores --builders`, user };
}

function storeTrustField(stdout: string): { trusted: boolean; raw: string; url?: string } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { trusted, url } = parsed as { trusted?: unknown; url?: unknown };
  if (typeof trusted !== 'number' && typeof trusted !== 'boolean') return undefined;
  return { trusted: Boolean(trusted), raw: String(trusted), ...(typeof url === 'string' ? { url } : {}) };
}

function failure(result: CommandResult): string {
  if (result.timedOut) return 'timed out';
  const line = `${result.stderr}\n${result.stdout}`.split('\n').map((l) => l.trim()).find((l) => l !== '');
  return `exited with ${result.exitCode ?? result.signal}${line ? ` (${line})` : ''}`;
}

/** Which store a `store` setting means here, by Nix's rules (src/libstore/store-api.cc, "auto"). */
async function storeKind(store: string, options: TrustProbeOptions): Promise<'local' | 'daemon' | 'other'> {
  const uri = store.replace(/\?.*$/, '');
  if (uri === 'daemon' || uri.startsWith('unix://')) return 'daemon';
  if (uri === 'local' || uri.startsWith('/')) return 'local';
  if (uri !== 'auto' && uri !== '') return 'other';
  const stateDir = options.stateDir ?? process.env.NIX_STATE_DIR ?? '/nix/var/nix';
  const socket = options.daemonSocket ?? process.env.NIX_DAEMON_SOCKET_PATH ?? `${stateDir}/daemon-socket/socket`;
  if (await access(stateDir, constants.R_OK | constants.W_OK).then(() => true, () => false)) return 'local';
  return (await stat(socket).then(() => true, () => false)) ? 'daemon' : 'local';
}
