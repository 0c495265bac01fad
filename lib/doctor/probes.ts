/**
 * Commands and requests that more than one check needs (the cache's
 * nix-cache-info, the GC-root listing, each target's system profile): each
 * is made once per doctor run, whichever check asks first.
 */
import { type CacheInfo, fetchCacheInfo } from '../cache/client.ts';
import { type GcRootListing, listRootsArgv, onCacheHost, parseRootListing } from '../cache/gc-roots.ts';
import type { CommandResult, Executor } from '../exec/types.ts';
import type { HostName, Inventory } from '../inventory/schema.ts';
import { type PlannedCommand, sshCommandTimeoutMs } from '../plan.ts';
import { deployTarget, sshArgv } from '../ssh.ts';
import { commandLine } from '../stages/failure.ts';

export interface Ran<T> {
  readonly tried: string;
  readonly result: CommandResult;
  /** parsed output when the command succeeded */
  readonly value?: T | undefined;
}

export type CacheInfoProbe =
  | { readonly ok: true; readonly tried: string; readonly info: CacheInfo }
  | { readonly ok: false; readonly tried: string; readonly error: string };

export interface SystemProfile {
  /** e.g. 42 for system-42-link */
  readonly generation?: number | undefined;
  readonly storePath?: string | undefined;
  readonly generations: number;
}

export interface Probes {
  cacheInfo(): Promise<CacheInfoProbe>;
  gcRoots(): Promise<Ran<GcRootListing>>;
  systemProfile(host: HostName): Promise<Ran<SystemProfile>>;
}

export interface ProbeEnvironment {
  readonly inventory: Inventory;
  readonly executor: Executor;
  readonly onCoordinator: boolean;
  readonly signal?: AbortSignal | undefined;
}

function once<K, V>(make: (key: K) => Promise<V>): (key: K) => Promise<V> {
  const made = new Map<K, Promise<V>>();
  return (key) => {
    if (!made.has(key)) made.set(key, make(key));
    return made.get(key)!;
  };
}

export async function runCommand<T>(
  env: ProbeEnvironment,
  command: PlannedCommand,
  parse: (stdout: string) => T,
  accept: (result: CommandResult) => boolean = (r) => r.exitCode === 0 && !r.timedOut,
): Promise<Ran<T>> {
  const result = await env.executor.run(command, { signal: env.signal });
  return { tried: commandLine(command), result, value: accept(result) ? parse(result.stdout) : undefined };
}

export const SYSTEM_PROFILES = '/nix/var/nix/profiles';

/** The profile links in one listing: `system -> system-42-link -> /nix/store/…`. */
export function systemProfileArgv(): string[] {
  return ['find', SYSTEM_PROFILES, '-maxdepth', '1', '-type', 'l', '-name', 'system*', '-printf', '%f\\t%l\\n'];
}

export function parseSystemProfile(stdout: string): SystemProfile {
  const links = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const [name, target] = line.split('\t');
    if (name && target && /^system(-\d+-link)?$/.test(name)) links.set(name, target);
  }
  const current = links.get('system');
  const generation = current?.match(/^system-(\d+)-link$/)?.[1];
  const storePath = current?.startsWith('/') ? current : current && links.get(current);
  return {
    generation: generation === undefined ? undefined : Number(generation),
    storePath,
    generations: [...links.keys()].filter((name) => name !== 'system').length,
  };
}

export function makeProbes(env: ProbeEnvironment): Probes {
  const { inventory } = env;
  const sshTimeoutMs = sshCommandTimeoutMs(inventory);
  const cacheInfo = once(async (): Promise<CacheInfoProbe> => {
    const tried = `GET ${inventory.cache.url}/nix-cache-info`;
    try {
      return { ok: true, tried, info: await fetchCacheInfo(inventory.cache.url, inventory.timeouts.connectSeconds * 1000, env.signal) };
    } catch (error) {
      return { ok: false, tried, error: (error as Error).message };
    }
  });
  // A missing directory is an answer (find exits 1), not a failure to ask.
  const gcRoots = once(() =>
    runCommand(
      env,
      { argv: onCacheHost(inventory, env.onCoordinator, listRootsArgv(inventory.cache.gcRootDir)), timeoutMs: sshTimeoutMs },
      parseRootListing,
      (r) => (r.exitCode === 0 || r.exitCode === 1) && !r.timedOut,
    ),
  );
  const systemProfile = once((host: HostName) =>
    runCommand(
      env,
      { argv: sshArgv(inventory, deployTarget(inventory.hosts[host]!), systemProfileArgv()), timeoutMs: sshTimeoutMs },
      parseSystemProfile,
    ),
  );
  return { cacheInfo: () => cacheInfo(undefined), gcRoots: () => gcRoots(undefined), systemProfile };
}
