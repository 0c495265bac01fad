/**
 * `generations`' plan as plain data: which hosts, and the one ssh command
 * per host that lists its system generations (lib/remote/generations.ts),
 * with its bound. Assembled once from the inventory and the selection
 * before anything runs; `--dry-run` prints it, lib/ops/generations.ts runs it.
 */
import { z } from 'zod';
import type { Inventory } from '../inventory/schema.ts';
import { type HostSelector, resolveSelection } from '../inventory/select.ts';
import { type Here, reachTarget, shortCommandTimeoutMs } from '../remote/fleet.ts';
import { generationsArgv } from '../remote/generations.ts';
import { remoteHostSchema } from '../remote/host.ts';
import { DEFAULT_CONCURRENCY } from './concurrency.ts';
import { plannedCommandSchema } from './types.ts';


export const generationsPlanSchema = z.object({
  /** the selected hosts, in inventory order */
  hosts: z.array(
    z.object({
      name: z.string(),
      /** the host as its deploy user: listing needs no root */
      target: remoteHostSchema,
      /** prints the generation listing (lib/remote/generations.ts LIST_GENERATIONS) */
      command: plannedCommandSchema,
    }),
  ),
  /** at most this many hosts are asked at once */
  concurrency: z.number().int().positive(),
});
export type GenerationsPlan = z.infer<typeof generationsPlanSchema>;

/**
 * The plan for the hosts `selector` names (lib/inventory/select.ts: throws
 * UsageError when it names none). Each command is bounded by the inventory's
 * short-command timeout (lib/remote/fleet.ts shortCommandTimeoutMs).
 */
export function planGenerations(
  inventory: Inventory,
  selector: HostSelector,
  options: { readonly concurrency?: number | undefined; /** this machine: read here, without ssh */ readonly here?: Here | undefined } = {},
): GenerationsPlan {
  const timeoutMs = shortCommandTimeoutMs(inventory);
  return {
    hosts: resolveSelection(inventory, selector).map((name) => {
      const target = reachTarget(inventory, name, options.here);
      return { name, target, command: { argv: generationsArgv(target, inventory.paths), timeoutMs } };
    }),
    concurrency: options.concurrency ?? DEFAULT_CONCURRENCY,
  };
}
