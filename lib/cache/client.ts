/** HTTP client for a Harmonia-compatible binary cache. */
import { backoffDelays, sleep } from '../backoff.ts';
import { type NarInfo, type PublicKey, type SignatureCheck, checkSignature, parseKeyValueLines, parseNarInfo, storePathHash } from './narinfo.ts';

export interface CacheInfo {
  readonly storeDir: string;
  readonly priority?: number | undefined;
  readonly wantMassQuery?: boolean | undefined;
}

export class CacheRequestError extends Error {
  override name = 'CacheRequestError';
}

async function get(url: string, timeoutMs: number, signal?: AbortSignal): Promise<Response> {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    return await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout, redirect: 'error' });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    const why = timeout.aborted ? `no answer within ${timeoutMs} ms` : (cause ?? (error as Error).message);
    throw new CacheRequestError(`GET ${url} failed: ${why}`);
  }
}

/** Where a binary cache describes itself (StoreDir, Priority). */
export function cacheInfoUrl(cacheUrl: string): string {
  return `${cacheUrl}/nix-cache-info`;
}

export async function fetchCacheInfo(cacheUrl: string, timeoutMs: number, signal?: AbortSignal): Promise<CacheInfo> {
  const url = cacheInfoUrl(cacheUrl);
  const response = await get(url, timeoutMs, signal);
  if (!response.ok) throw new CacheRequestError(`GET ${url} answered HTTP ${response.status}`);
  const fields = parseKeyValueLines(await response.text());
  const storeDir = fields.get('StoreDir')?.[0];
  if (!storeDir) throw new CacheRequestError(`GET ${url} has no StoreDir: is this a Nix binary cache?`);
  const priority = fields.get('Priority')?.[0];
  const mass = fields.get('WantMassQuery')?.[0];
  return { storeDir, priority: priority ? Number(priority) : undefined, wantMassQuery: mass ? mass === '1' : undefined };
}

export type NarInfoProbe =
  | { readonly state: 'missing' }
  | { readonly state: 'served'; readonly info: NarInfo; readonly signature: SignatureCheck };

/** Where a binary cache serves a store path's narinfo: `<cache>/<hash>.narinfo` (Nix's binary cache layout). */
export function narInfoUrl(cacheUrl: string, storePath: string): string {
  return narInfoUrlForHash(cacheUrl, storePathHash(storePath));
}

/** {@link narInfoUrl} from the hash part alone (the plan writes a placeholder there). */
export function narInfoUrlForHash(cacheUrl: string, hash: string): string {
  return `${cacheUrl}/${hash}.narinfo`;
}

/** GETs `url` (the narinfo of `storePath`, see {@link narInfoUrl}) and checks its signature against `trusted`. */
export async function probeNarInfo(
  url: string,
  storePath: string,
  trusted: readonly PublicKey[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<NarInfoProbe> {
  const response = await get(url, timeoutMs, signal);
  if (response.status === 404) return { state: 'missing' };
  if (!response.ok) throw new CacheRequestError(`GET ${url} answered HTTP ${response.status}`);
  const info = parseNarInfo(await response.text());
  if (info.storePath !== storePath) throw new CacheRequestError(`GET ${url} describes ${info.storePath}, not ${storePath}`);
  return { state: 'served', info, signature: checkSignature(info, trusted) };
}

export interface WaitOptions {
  readonly timeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly initialDelayMs?: number;
  /** the cap: never wait more than a second between polls */
  readonly maxDelayMs?: number;
  readonly signal?: AbortSignal;
  readonly onPoll?: (attempt: number, probe: NarInfoProbe | Error) => void;
}

export type WaitOutcome =
  | { readonly state: 'served'; readonly info: NarInfo; readonly signature: SignatureCheck; readonly attempts: number }
  | { readonly state: 'timeout'; readonly attempts: number; readonly lastError?: Error | undefined };

/**
 * Polls until the narinfo is served (signed or not: the caller judges the
 * signature), the timeout passes, or the signal aborts. Request errors are
 * retried, since a cache restarting is the case this wait exists for.
 */
export async function waitForNarInfo(
  url: string,
  storePath: string,
  trusted: readonly PublicKey[],
  options: WaitOptions,
): Promise<WaitOutcome> {
  const deadline = Date.now() + options.timeoutMs;
  const delays = backoffDelays(options.initialDelayMs ?? 100, options.maxDelayMs ?? 1000);
  let attempts = 0;
  let lastError: Error | undefined;
  for (;;) {
    attempts += 1;
    try {
      const probe = await probeNarInfo(url, storePath, trusted, options.requestTimeoutMs, options.signal);
      options.onPoll?.(attempts, probe);
      if (probe.state === 'served') return { ...probe, attempts };
      lastError = undefined;
    } catch (error) {
      lastError = error as Error;
      options.onPoll?.(attempts, lastError);
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0 || options.signal?.aborted) return { state: 'timeout', attempts, lastError };
    await sleep(Math.min(delays.next().value, remaining), options.signal);
  }
}
