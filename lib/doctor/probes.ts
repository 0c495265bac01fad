/**
 * Commands and requests that more than one check needs (the cache's
 * nix-cache-info, the GC-root listing, each target's generation): each
 * is made once per doctor run, whichever check asks first.
 */
import { type CacheInfo, fetchCacheInfo } from '../cache/client.ts';
import { type GcRootListing, listRootsArgv, parseRootListing } from '../cache/gc-roots.ts';
import { commandLine } from '../exec/describe.ts';
import type { CommandResult, CommandSpec, Executor } from '../exec/types.ts';
import type { HostName, Inventory } from '../inventory/schema.ts';
import { atPlace, coordinatorPlace, shortCommandTimeoutMs, type Here, reachTarget } from '../remote/fleet.ts';
import { type Generation, generationProbeArgv, parseGeneration } from '../remote/scripts.ts';

export interface Ran<T> {
  readonly tried: string;
  readonly result: CommandResult;
  /** parsed output when the command succeeded */
  readonly value?: T | undefined;
}

export type CacheInfoProbe =
  | { readonly ok: true; readonly tried: string; readonly info: CacheInfo }
  | { readonly ok: false; readonly tried: string; readonly error: string };

export interface Probes {
  cacheInfo(): Promise<CacheInfoProbe>;
  gcRoots(): Promise<Ran<GcRootListing>>;
  /** what a target runs, read as the deploy reads it before deploying */
  generation(host: HostName): Promise<Ran<Generation>>;
}

export interface ProbeEnvironment {
  readonly inventory: Inventory;
  readonly executor: Executor;
  readonly onCoordinator: boolean;
  /** the selected host that is this machine: read here, without ssh, as the deploy would */
  readonly here?: Here | undefined;
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
  command: CommandSpec,
  parse: (stdout: string) => T,
  accept: (result: CommandResult) => boolean = (r) => r.exitCode === 0 && !r.timedOut,
): Promise<Ran<T>> {
  const result = await env.executor.run(command, { signal: env.signal });
  return { tried: commandLine(command), result, value: accept(result) ? parse(result.stdout) : undefined };
}

export function makeProbes(env: ProbeEnvironment): Probes {
  const { inventory } = env;
  const sshTimeoutMs = shortCommandTimeoutMs(inventory);
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
      { argv: atPlace(coordinatorPlace(inventory, env.onCoordinator), listRootsArgv(inventory.cache.gcRootDir)), timeoutMs: sshTimeoutMs },
      parseRootListing,
      (r) => (r.exitCode === 0 || r.exitCode === 1) && !r.timedOut,
    ),
  );
  const generation = once((host: HostName) =>
    runCommand(env, { argv: generationProbeArgv(reachTarget(inventory, host, env.here), inventory.paths), timeoutMs: sshTimeoutMs }, parseGeneration),
  );
  return { cacheInfo: () => cacheInfo(undefined), gcRoots: () => gcRoots(undefined), generation };
}
