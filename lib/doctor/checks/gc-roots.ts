/**
 * The GC-root directory on the cache host exists and holds roots (else the
 * daily GC may collect what the cache serves); dangling roots are listed and
 * roots past the prune threshold counted.
 */
import { olderThan, PRUNE_AFTER_DAYS } from '../../cache/gc-roots.ts';
import { gcRootHints } from '../../cache/hints.ts';
import type { Inventory } from '../../inventory/schema.ts';
import { coordinatorHost } from '../../remote/fleet.ts';
import { sshDestination } from '../../remote/host.ts';
import type { Check } from '../types.ts';
import { commandFailed, sshFailed } from './outcome.ts';

export function gcRootsCheck(inventory: Inventory): Check {
  const dir = inventory.cache.gcRootDir;
  return {
    id: 'gc-roots',
    title: `GC roots in ${dir} on ${inventory.coordinator.name}`,
    async run(ctx) {
      const listing = await ctx.probes.gcRoots();
      const tried = [listing.tried];
      if (listing.value === undefined) {
        if (!ctx.onCoordinator && sshFailed(listing.result)) {
          return commandFailed('ssh', listing, [gcRootHints.unreachable(sshDestination(coordinatorHost(inventory)))]);
        }
        return commandFailed('listing the GC roots', listing, []);
      }
      if (!listing.value.exists) return { status: 'fail', summary: `${dir} does not exist`, tried, hints: [gcRootHints.missingRoot(dir)] };
      const { roots } = listing.value;
      if (roots.length === 0) return { status: 'fail', summary: `${dir} holds no roots`, tried, hints: [gcRootHints.missingRoot(dir)] };
      const dangling = roots.filter((root) => root.dangling);
      const old = olderThan(roots, PRUNE_AFTER_DAYS, ctx.now);
      const summary =
        `${roots.length} root${roots.length > 1 ? 's' : ''}, ${dangling.length} dangling, ` +
        `${old.length} older than ${PRUNE_AFTER_DAYS} days (the weekly prune removes those)`;
      if (dangling.length === 0) return { status: 'pass', summary, tried };
      return {
        status: 'warn',
        summary,
        tried,
        details: dangling.map((root) => `dangling: ${root.name} -> ${root.target}`),
        hints: [gcRootHints.dangling()],
      };
    },
  };
}
