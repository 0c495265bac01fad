/**
 * `--on` and `--exclude`, the same on every command (lib/inventory/select.ts
 * resolves them against the inventory).
 */
import { hostname, userInfo } from 'node:os';
import type { Inventory } from '../inventory/schema.ts';
import type { HostSelector } from '../inventory/select.ts';
import { UsageError } from '../errors.ts';
import { type Here, hereAmong, localCoordinatorProblem } from '../remote/fleet.ts';

/** parseStrict options: both repeatable. */
export const SELECTION_OPTIONS = {
  on: { type: 'string' as const, multiple: true as const, default: [] as string[] },
  exclude: { type: 'string' as const, multiple: true as const, default: [] as string[] },
};

/** The help lines for {@link SELECTION_OPTIONS}. */
export const SELECTION_HELP = `  --on <selector>      hosts to act on: names, @tag, globs (opi0*), comma lists;
                       repeatable (their union)
  --exclude <selector> hosts to leave out (same syntax; repeatable)`;

/**
 * The selector the operator gave: `--on` values plus `extra` (a command's
 * positional host names or @tags, a shorthand for --on) and `--exclude`.
 */
export function selectorFrom(values: { readonly on?: readonly string[] | undefined; readonly exclude?: readonly string[] | undefined }, extra: readonly string[] = []): HostSelector {
  return { on: [...extra, ...(values.on ?? [])], exclude: [...(values.exclude ?? [])] };
}

/**
 * The inventory's host that is the machine this command runs on, if any,
 * with the user it runs as (lib/remote/fleet.ts hereAmong): the host named
 * by this machine's hostname. Commands reach it here, without ssh, as the
 * deploy does. Throws UsageError (exit 2) when coordinator.local contradicts
 * the hostname.
 */
export function thisMachine(inventory: Inventory, host = hostname()): Here | undefined {
  const problem = localCoordinatorProblem(inventory, host);
  if (problem) throw new UsageError(problem);
  return hereAmong(inventory, Object.keys(inventory.hosts), host, userInfo().username);
}
