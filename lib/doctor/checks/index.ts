/** Every check, in the order they are reported: the cache, the builders, the targets, the cache host, this machine (its Nix, its nixos-rebuild). */
import type { Inventory } from '../../inventory/schema.ts';
import type { Check } from '../types.ts';
import { builderCheck } from './builders.ts';
import { cacheAnswersCheck, cacheKeyCheck } from './cache.ts';
import { gcRootsCheck } from './gc-roots.ts';
import { localBuildCheck } from './local-build.ts';
import { nixosRebuildCheck } from './nixos-rebuild.ts';
import { targetCheck } from './targets.ts';

export function doctorChecks(inventory: Inventory): Check[] {
  const hosts = Object.keys(inventory.hosts);
  return [
    cacheAnswersCheck(inventory),
    cacheKeyCheck(inventory),
    ...hosts.filter((host) => inventory.hosts[host]!.builder).map((host) => builderCheck(inventory, host)),
    ...hosts.map((host) => targetCheck(inventory, host)),
    gcRootsCheck(inventory),
    localBuildCheck(inventory),
    nixosRebuildCheck(inventory),
  ];
}
