/** Which hosts a run deploys, and which host builds for them. */
import { UsageError } from '../errors.ts';
import type { HostName, Inventory } from './schema.ts';

export type HostSelection = { kind: 'names'; names: readonly string[] } | { kind: 'all'; tags?: readonly string[] };

export function knownHosts(inventory: Inventory): string {
  return Object.keys(inventory.hosts).join(', ');
}

export function assertKnownHost(inventory: Inventory, name: string): void {
  if (!Object.hasOwn(inventory.hosts, name)) {
    throw new UsageError(`unknown host '${name}'; known: ${knownHosts(inventory)}`);
  }
}

export function selectHosts(inventory: Inventory, selection: HostSelection): HostName[] {
  if (selection.kind === 'names') {
    if (selection.names.length === 0) throw new UsageError('name at least one host to deploy');
    selection.names.forEach((name) => assertKnownHost(inventory, name));
    return [...new Set(selection.names)];
  }
  const all = Object.entries(inventory.hosts);
  const tags = selection.tags ?? [];
  const chosen = tags.length ? all.filter(([, host]) => tags.some((t) => host.tags.includes(t))) : all;
  if (chosen.length === 0) {
    const known = [...new Set(all.flatMap(([, h]) => h.tags))].sort().join(', ') || '(none)';
    throw new UsageError(`no host has tag ${tags.map((t) => `'${t}'`).join(' or ')}; known tags: ${known}`);
  }
  return chosen.map(([name]) => name);
}

/**
 * The seed builds for every selected host, so it must be a builder of their
 * system. Preference: --seed, then the inventory's seed, then a selected
 * builder, then any builder of that system.
 */
export function chooseSeed(inventory: Inventory, hosts: readonly HostName[], requested?: string): HostName {
  const systems = [...new Set(hosts.map((name) => inventory.hosts[name]!.system))];
  if (systems.length !== 1) {
    throw new UsageError(
      `the selected hosts have different systems (${systems.join(', ')}); deploy one system per run`,
    );
  }
  const system = systems[0]!;
  const canSeed = (name: string) => {
    const host = inventory.hosts[name];
    return host !== undefined && host.builder !== undefined && host.system === system;
  };
  if (requested !== undefined) {
    assertKnownHost(inventory, requested);
    if (!canSeed(requested)) {
      throw new UsageError(`--seed ${requested}: it must be a builder for ${system} (a host with a "builder" entry)`);
    }
    return requested;
  }
  const seed = seedCandidates(inventory, hosts)[0];
  if (!seed) throw new UsageError(`no host in the inventory can build for ${system}: add a "builder" entry`);
  return seed;
}

/** Builders of the selected hosts' system, best first: the inventory's seed, the selected hosts, the rest. */
export function seedCandidates(inventory: Inventory, hosts: readonly HostName[]): HostName[] {
  const system = inventory.hosts[hosts[0]!]?.system;
  const ordered = [inventory.seed, ...hosts, ...Object.keys(inventory.hosts)];
  return [...new Set(ordered)].filter((name): name is string => {
    const host = name === undefined ? undefined : inventory.hosts[name];
    return host?.builder !== undefined && host.system === system;
  });
}
