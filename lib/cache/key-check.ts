/**
 * Does the cache sign with the key the inventory trusts? Asked before the
 * build, so a wrong cache.publicKey fails in seconds rather than after a
 * 40-minute seed build. Harmonia serves (and signs) every path in the cache
 * host's store, so a path pinned there is a path it must serve.
 */
import { signatureProblem } from './hints.ts';
import { narInfoUrl, probeNarInfo } from './client.ts';
import { parsePublicKey } from './narinfo.ts';

export type KeyCheck =
  | { readonly kind: 'verified'; readonly storePath: string; readonly keyName: string }
  | { readonly kind: 'mismatch'; readonly storePath: string; readonly message: string; readonly hint: string; readonly sigs: readonly string[] }
  | { readonly kind: 'unchecked'; readonly why: string };

/**
 * Asks the cache for `storePaths` in order (newest first) until one is
 * served, and verifies its `Sig` with `publicKey` (ed25519 over the narinfo
 * fingerprint). Each request is bounded by `timeoutMs`. Never throws: a
 * cache that does not answer is `unchecked` (the cache-info check reports it).
 * The shipped placeholder key is the caller's to refuse first (isPlaceholderKey).
 */
export async function checkCacheKey(
  cacheUrl: string,
  publicKey: string,
  storePaths: readonly string[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<KeyCheck> {
  const trusted = [parsePublicKey(publicKey)];
  for (const storePath of storePaths) {
    let probe;
    try {
      probe = await probeNarInfo(narInfoUrl(cacheUrl, storePath), storePath, trusted, timeoutMs, signal);
    } catch (error) {
      return { kind: 'unchecked', why: `the cache did not answer (${(error as Error).message})` };
    }
    if (probe.state === 'missing') continue;
    if (probe.signature.ok) return { kind: 'verified', storePath, keyName: probe.signature.keyName };
    return { kind: 'mismatch', storePath, ...signatureProblem(probe.signature, cacheUrl), sigs: probe.info.sigs };
  }
  return { kind: 'unchecked', why: storePaths.length ? `none of the ${storePaths.length} newest pinned paths is served` : 'nothing is pinned on the cache host yet' };
}
