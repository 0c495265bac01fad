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

/**
 * The cache's base URL (`cache.url`, checked by the inventory schema), parsed
 * by the URL class with its path ending in "/", so that the cache's files
 * resolve beneath it: `http://hawk.internal:5000/harmonia` + `nix-cache-info`
 * is `…/harmonia/nix-cache-info`, not `…/nix-cache-info`.
 */
function cacheBase(cacheUrl: string): URL {
  const base = new URL(cacheUrl);
  if (base.search || base.hash || base.href.includes('?') || base.href.includes('#')) {
    throw new CacheRequestError(`cache URL ${cacheUrl} has a query or fragment; the cache's paths go beneath it`);
  }
  if (!base.pathname.endsWith('/')) base.pathname = `${base.pathname}/`;
  return base;
}

/** Where a binary cache describes itself (StoreDir, Priority). */
export function cacheInfoUrl(cacheUrl: string): string {
  return new URL('nix-cache-info', cacheBase(cacheUrl)).href;
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

/**
 * What may name a narinfo: a store path's hash (32 characters of Nix's
 * base-32), or a placeholder `{{name:host}}` the plan writes where the hash is
 * known only at run time (lib/plan/placeholders.ts; filled with a hash).
 */
const NARINFO_HASH = /^(?:[0-9a-df-np-sv-z]{32}|\{\{[a-z-]+:[a-z0-9-]+\}\})$/;

/**
 * {@link narInfoUrl} from the hash part alone (the plan writes a placeholder
 * there). The base is the URL class's (scheme, host, IPv6 brackets, port,
 * path ending in "/"); the one path segment is appended to its serialisation
 * rather than resolved with `new URL(segment, base)`, because the URL class
 * percent-encodes `{` and `}` in a path, which would turn the plan's
 * placeholder into `%7B%7B…%7D%7D` that the run no longer finds to fill. The
 * segment is checked first to hold only characters a path carries as they are
 * (no "/", "?", "#", "%" or "."), so for a real hash the result is exactly
 * what the URL class resolves, and a filled placeholder is a hash.
 */
export function narInfoUrlForHash(cacheUrl: string, hash: string): string {
  if (!NARINFO_HASH.test(hash)) throw new CacheRequestError(`not a store path hash or a placeholder for one: ${hash}`);
  return `${cacheBase(cacheUrl).href}${hash}.narinfo`;
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
