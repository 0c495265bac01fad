/**
 * The cache answers as a Nix binary cache, and what it serves is signed by
 * the key the inventory (and every machine's trusted-public-keys) trusts.
 */
import { posix } from 'node:path';
import { narInfoUrl, probeNarInfo } from '../../cache/client.ts';
import { cacheHints, cacheUnreachableHints, pathMissingHints, signatureProblem } from '../../cache/hints.ts';
import { isStorePath, newestLiveRoots } from '../../cache/gc-roots.ts';
import { parsePublicKey } from '../../cache/narinfo.ts';
import type { Inventory } from '../../inventory/schema.ts';
import type { Check, DoctorContext } from '../types.ts';
import { describeError } from './outcome.ts';

export function cacheAnswersCheck(inventory: Inventory): Check {
  const url = inventory.cache.url;
  return {
    id: 'cache-info',
    title: `cache ${url} answers`,
    async run(ctx) {
      const probe = await ctx.probes.cacheInfo();
      const tried = [probe.tried];
      if (!probe.ok) return { status: 'fail', summary: probe.error, tried, hints: cacheUnreachableHints(url) };
      const { storeDir, priority } = probe.info;
      const found = `StoreDir: ${storeDir}${priority === undefined ? '' : `, Priority: ${priority}`}`;
      if (storeDir !== '/nix/store') {
        return { status: 'fail', summary: `${found} — not /nix/store`, tried, hints: [cacheHints.harmoniaDown(url)] };
      }
      return { status: 'pass', summary: found, tried };
    },
  };
}

interface KnownPath {
  readonly storePath: string;
  /** where we know it from, for the summary */
  readonly source: string;
  /** a GC root on the cache host: Harmonia serves its whole store, so it must be served */
  readonly pinned: boolean;
}

/** Newest GC roots first, then the targets' current systems; asked for only as far as needed. */
async function* knownPaths(ctx: DoctorContext, tried: string[]): AsyncGenerator<KnownPath> {
  const roots = await ctx.probes.gcRoots();
  tried.push(roots.tried);
  for (const root of newestLiveRoots(roots.value)) {
    yield { storePath: root.target, source: `GC root ${root.name}`, pinned: true };
  }
  for (const host of Object.keys(ctx.inventory.hosts)) {
    const storePath = (await ctx.probes.generation(host)).value?.profilePath;
    if (storePath && isStorePath(storePath)) yield { storePath, source: `current system of ${host}`, pinned: false };
  }
}

export function cacheKeyCheck(inventory: Inventory): Check {
  const { url, publicKey } = inventory.cache;
  const keyName = publicKey.split(':')[0]!;
  return {
    id: 'cache-key',
    title: `cache signs with cache.publicKey (${keyName})`,
    async run(ctx) {
      const answers = await ctx.probes.cacheInfo();
      if (!answers.ok) return { status: 'skip', summary: 'the cache does not answer (see above)', tried: [] };
      const tried: string[] = [];
      const trusted = [parsePublicKey(publicKey)];
      const unserved: KnownPath[] = [];
      for await (const known of knownPaths(ctx, tried)) {
        tried.push(`GET ${narInfoUrl(url, known.storePath)}`);
        let probe;
        try {
          probe = await probeNarInfo(narInfoUrl(url, known.storePath), known.storePath, trusted, inventory.timeouts.connectSeconds * 1000, ctx.signal);
        } catch (error) {
          return { status: 'fail', summary: describeError(error), tried, hints: cacheUnreachableHints(url) };
        }
        if (probe.state === 'missing') {
          unserved.push(known);
          continue;
        }
        const name = posix.basename(known.storePath);
        if (probe.signature.ok) {
          return { status: 'pass', summary: `${name} (${known.source}) is signed by ${probe.signature.keyName}`, tried };
        }
        const problem = signatureProblem(probe.signature, url);
        return {
          status: 'fail',
          summary: `${problem.message} — ${name} (${known.source})`,
          tried,
          details: [`trusted: ${publicKey}`, ...probe.info.sigs.map((sig) => `served: Sig: ${sig}`)],
          hints: [problem.hint],
        };
      }
      if (unserved.length === 0) {
        return {
          status: 'warn',
          summary: 'no known store path to check: no GC roots and no system profiles',
          tried,
          hints: [cacheHints.pathNotSigned()],
        };
      }
      // A pinned path is in the cache host's store, so a Harmonia serving that store must have it.
      return {
        status: unserved.some((k) => k.pinned) ? 'fail' : 'warn',
        summary: `none of ${unserved.length} known store path${unserved.length > 1 ? 's is' : ' is'} served, so the key was not checked`,
        tried,
        details: unserved.map((k) => `missing: ${k.storePath} (${k.source})`),
        hints: pathMissingHints(url),
      };
    },
  };
}
