/**
 * Every check, in the order they are reported: the cache, the builders, the
 * targets, the cache host, this machine (its Nix, its nixos-rebuild). The
 * builder and target checks are those of `hosts` (default: every host); the
 * others are about the fleet as a whole.
 */
import type { HostName, Inventory } from '../../inventory/schema.ts';
import type { Here } from '../../remote/fleet.ts';
import type { Check } from '../types.ts';
import { builderCheck } from './builders.ts';
import { cacheAnswersCheck, cacheKeyCheck } from './cache.ts';
import { gcRootsCheck } from './gc-roots.ts';
import { localBuildCheck } from './local-build.ts';
import { nixosRebuildCheck } from './nixos-rebuild.ts';
import { targetCheck } from './targets.ts';

export function doctorChecks(inventory: Inventory, hosts: readonly HostName[] = Object.keys(inventory.hosts), here?: Here): Check[] {
  return [
    cacheAnswersCheck(inventory),
    cacheKeyCheck(inventory),
    ...hosts.filter((host) => inventory.hosts[host]!.builder).map((host) => builderCheck(inventory, host)),
    ...hosts.map((host) => targetCheck(inventory, host, here)),
    gcRootsCheck(inventory),
    localBuildCheck(inventory),
    nixosRebuildCheck(inventory),
  ];
}
