import { afterEach, describe, expect, it } from 'vitest';
import { backoffDelays } from '../../lib/backoff.ts';
import { CacheRequestError, fetchCacheInfo, narInfoUrl, waitForNarInfo } from '../../lib/cache/client.ts';
import { parsePublicKey } from '../../lib/cache/narinfo.ts';
import { FIXTURE_KEY, FIXTURE_TOPLEVEL, fixture } from '../helpers/fixtures.ts';
import { deadCacheUrl, startTestCache, type TestCache } from '../helpers/http-cache.ts';

const trusted = [parsePublicKey(FIXTURE_KEY)];
const narinfoPath = '/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn.narinfo';
let cache: TestCache | undefined;
afterEach(async () => {
  await cache?.close();
  cache = undefined;
});

describe('backoff', () => {
  it('doubles and is capped', () => {
    const delays = backoffDelays(100, 1000);
    expect(Array.from({ length: 6 }, () => delays.next().value)).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
});

describe('cache client against a real HTTP server', () => {
  it('reads nix-cache-info', async () => {
    cache = await startTestCache();
    expect(await fetchCacheInfo(cache.url, 2000)).toEqual({ storeDir: '/nix/store', priority: 30, wantMassQuery: true });
  });

  it('says when nothing answers', async () => {
    const url = await deadCacheUrl();
    await expect(fetchCacheInfo(url, 2000)).rejects.toThrow(new CacheRequestError(`GET ${url}/nix-cache-info failed: ECONNREFUSED`));
  });

  it('polls until the narinfo is served, then checks its signature', async () => {
    cache = await startTestCache();
    const polls: string[] = [];
    const served = cache;
    const outcome = await waitForNarInfo(narInfoUrl(cache.url, FIXTURE_TOPLEVEL), FIXTURE_TOPLEVEL, trusted, {
      timeoutMs: 10_000,
      requestTimeoutMs: 2000,
      initialDelayMs: 10,
      onPoll: (attempt, probe) => {
        polls.push(probe instanceof Error ? 'error' : probe.state);
        if (attempt === 3) served.files.set(narinfoPath, fixture('narinfo/signed.narinfo'));
      },
    });
    expect(polls).toEqual(['missing', 'missing', 'missing', 'served']);
    expect(outcome).toMatchObject({ state: 'served', attempts: 4, signature: { ok: true, keyName: 'fixture-cache-1' } });
    expect(cache.requests.filter((r) => r === narinfoPath)).toHaveLength(4);
    expect(narInfoUrl(cache.url, FIXTURE_TOPLEVEL)).toBe(`${cache.url}${narinfoPath}`);
  });

  it('returns a served narinfo with a bad signature for the caller to judge', async () => {
    cache = await startTestCache({ [narinfoPath]: fixture('narinfo/signed-by-other-key.narinfo') });
    const outcome = await waitForNarInfo(narInfoUrl(cache.url, FIXTURE_TOPLEVEL), FIXTURE_TOPLEVEL, trusted, { timeoutMs: 2000, requestTimeoutMs: 1000 });
    expect(outcome).toMatchObject({ state: 'served', signature: { ok: false, reason: 'other-key' } });
  });

  it('gives up after the timeout and keeps the last error', async () => {
    const url = await deadCacheUrl();
    const outcome = await waitForNarInfo(narInfoUrl(url, FIXTURE_TOPLEVEL), FIXTURE_TOPLEVEL, trusted, { timeoutMs: 300, requestTimeoutMs: 200, initialDelayMs: 50 });
    expect(outcome.state).toBe('timeout');
    expect(outcome.attempts).toBeGreaterThan(1);
    expect(outcome.state === 'timeout' && outcome.lastError?.message).toMatch(/ECONNREFUSED/);
  });

  it('refuses a narinfo for another path', async () => {
    cache = await startTestCache({ [narinfoPath]: fixture('narinfo/no-references.narinfo') });
    const outcome = await waitForNarInfo(narInfoUrl(cache.url, FIXTURE_TOPLEVEL), FIXTURE_TOPLEVEL, trusted, { timeoutMs: 200, requestTimeoutMs: 200, initialDelayMs: 50 });
    expect(outcome.state === 'timeout' && outcome.lastError?.message).toMatch(/describes \/nix\/store\/7kh07n14rb43dvi221pvih4c9h4iryg3-fixture-dep/);
  });
});
