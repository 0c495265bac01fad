/** Which hosts a command acts on (`--on`, `--exclude`), and which host builds for them. */
import picomatch from 'picomatch';
import { UsageError } from '../errors.ts';
import type { HostName, Inventory } from './schema.ts';

/**
 * Which hosts a command acts on, as the operator wrote it (colmena's `--on`):
 * each string is a comma list of host names, `@tag`s and globs (`opi0*`,
 * `opi0?`, `opi0[12]`; no braces); `on` is their union (empty: every host), minus `exclude`.
 */
export interface HostSelector {
  readonly on: readonly string[];
  readonly exclude: readonly string[];
}

export function knownHosts(inventory: Inventory): string {
  return Object.keys(inventory.hosts).join(', ');
}

export function assertKnownHost(inventory: Inventory, name: string): void {
  if (!Object.hasOwn(inventory.hosts, name)) {
    throw new UsageError(`unknown host '${name}'; known: ${knownHosts(inventory)}`);
  }
}

/** The hosts and the tags of the inventory, for an error message. */
function known(inventory: Inventory): string {
  const tags = [...new Set(Object.values(inventory.hosts).flatMap((h) => h.tags))].sort().map((t) => `@${t}`);
  return `known: ${knownHosts(inventory)}; tags: ${tags.join(', ') || '(none)'}`;
}

// `*`, `?` and `[…]`; no braces: their commas would be read as the list's.
const GLOB_CHARACTERS = /[*?[\]]/;

/** The hosts one selector item names: `@tag`, a glob, or a host name. Throws UsageError when it names none. */
function hostsOf(inventory: Inventory, item: string, excluding: boolean): HostName[] {
  const names = Object.keys(inventory.hosts);
  let matched: HostName[];
  if (item.startsWith('!')) throw new UsageError(`'${item}': a leading ! does not negate here; leave hosts out with --exclude`);
  if (item.startsWith('@')) {
    const tag = item.slice(1);
    matched = names.filter((name) => inventory.hosts[name]!.tags.includes(tag));
  } else if (GLOB_CHARACTERS.test(item)) {
    // picomatch: a shell's `*`, `?` and `[…]` (posix: `[!1]` as a shell reads it); no extglobs; a leading `!` (its negation) is refused above.
    const isMatch = picomatch(item, { nocase: false, dot: true, noextglob: true, posix: true });
    matched = names.filter((name) => isMatch(name));
  } else {
    matched = Object.hasOwn(inventory.hosts, item) ? [item] : [];
  }
  if (matched.length === 0) {
    const what = !item.startsWith('@') && !GLOB_CHARACTERS.test(item) ? `unknown host '${item}'` : `'${item}' matches no host`;
    throw new UsageError(`${excluding ? '--exclude: ' : ''}${what}; ${known(inventory)}`);
  }
  return matched;
}

/**
 * A selector's comma-separated items. Throws UsageError for a selector with
 * none (`--on ''`, `--on ,`: an empty variable in a script), which would
 * otherwise read as "no selector", that is every host.
 */
function itemsOf(selectors: readonly string[], flag: string): string[] {
  return selectors.flatMap((selector) => {
    const items = selector.split(',').map((item) => item.trim()).filter((item) => item !== '');
    if (items.length === 0) throw new UsageError(`${flag} '${selector}': an empty selector names no host (every host is --on '*')`);
    return items;
  });
}

/**
 * The hosts `selector` names, in inventory order. Throws UsageError (exit 2)
 * when an item of `on` or `exclude` matches no host (a typo in an exclusion
 * must not deploy the host it meant to spare), naming the known hosts and
 * tags, or when nothing is left.
 */
export function resolveSelection(inventory: Inventory, selector: HostSelector): HostName[] {
  const on = itemsOf(selector.on, '--on');
  const chosen = new Set(on.length === 0 ? Object.keys(inventory.hosts) : on.flatMap((item) => hostsOf(inventory, item, false)));
  for (const item of itemsOf(selector.exclude, '--exclude')) for (const name of hostsOf(inventory, item, true)) chosen.delete(name);
  const hosts = Object.keys(inventory.hosts).filter((name) => chosen.has(name));
  if (hosts.length === 0) {
    const from = selector.on.length ? selector.on.map((s) => `'${s}'`).join(' ') : 'every host';
    throw new UsageError(`nothing left: ${selector.exclude.map((s) => `--exclude '${s}'`).join(' ')} removes ${from}; ${known(inventory)}`);
  }
  return hosts;
}

/** Where one Nix system's toplevels are built: the inventory's builders of that system (the preferred seed first), or the coordinator natively. */
export interface SystemBuilders {
  readonly system: string;
  /** the selected hosts of this system, in inventory order */
  readonly hosts: readonly HostName[];
  /** builders of this system, the seed first: --seed, the inventory's seed, selected hosts, the rest; empty when the coordinator builds */
  readonly builders: readonly HostName[];
}

/**
 * The selected hosts grouped by Nix system (in the order the systems first
 * appear), each with the builders that may build it: hosts of that system
 * with a "builder" entry, preferred seed first. A system without builders is
 * built by the coordinator when it is the coordinator's own (x86_64 builds
 * stay on hawk: nix-distributed-builds.md); otherwise nothing may build it
 * (nothing under emulation): UsageError (exit 2), as for a --seed that builds
 * none of the selected systems.
 */
export function systemBuilders(inventory: Inventory, hosts: readonly HostName[], requestedSeed?: string): SystemBuilders[] {
  const systems = [...new Set(hosts.map((name) => inventory.hosts[name]!.system))];
  const buildersOf = (system: string) => {
    const ordered = [requestedSeed, inventory.seed, ...hosts, ...Object.keys(inventory.hosts)];
    return [...new Set(ordered)].filter((name): name is string => {
      const host = name === undefined ? undefined : inventory.hosts[name];
      return host?.builder !== undefined && host.system === system;
    });
  };
  if (requestedSeed !== undefined) {
    assertKnownHost(inventory, requestedSeed);
    const entry = inventory.hosts[requestedSeed]!;
    if (!entry.builder) {
      const named = systems.map((system) => `${system}: ${buildersOf(system).join(', ') || `none (built by the coordinator ${inventory.coordinator.name})`}`);
      throw new UsageError(`--seed ${requestedSeed}: it has no "builder" entry, so it builds nothing; the selected systems' builders are ${named.join('; ')}`);
    }
    if (!systems.includes(entry.system)) {
      throw new UsageError(`--seed ${requestedSeed} builds ${entry.system}, and no selected host is ${entry.system} (they are ${systems.join(', ')})`);
    }
  }
  return systems.map((system) => {
    const builders = buildersOf(system);
    if (builders.length === 0 && system !== inventory.coordinator.system) {
      const of = hosts.filter((h) => inventory.hosts[h]!.system === system);
      throw new UsageError(
        `no host in the inventory can build for ${system} (${of.join(', ')}): add a "builder" entry to a host of that system ` +
          `(the coordinator ${inventory.coordinator.name} builds only ${inventory.coordinator.system}, and nothing is built under emulation)`,
      );
    }
    return { system, hosts: hosts.filter((h) => inventory.hosts[h]!.system === system), builders };
  });
}
