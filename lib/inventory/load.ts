/** Reads and validates hosts.json; every problem names its JSON path. */
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { InventoryError } from '../errors.ts';
import { type Inventory, inventorySchema } from './schema.ts';

export async function loadInventory(path: string): Promise<Inventory> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InventoryError(
      code === 'ENOENT' ? `inventory not found: ${path}` : `cannot read inventory ${path}: ${code ?? String(error)}`,
    );
  }
  return parseInventory(text, path);
}

export function parseInventory(text: string, source = 'hosts.json'): Inventory {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InventoryError(`${source} is not valid JSON: ${(error as Error).message}`);
  }
  const result = inventorySchema.safeParse(json);
  if (!result.success) {
    throw new InventoryError(`${source} is invalid:`, result.error.issues.flatMap((issue) => describeIssue(issue)));
  }
  const problems = crossCheck(result.data);
  if (problems.length) throw new InventoryError(`${source} is invalid:`, problems);
  return result.data;
}

/** Rules that span fields, which the schema cannot express per field. */
function crossCheck(inventory: Inventory): string[] {
  const problems: string[] = [];
  const names = Object.keys(inventory.hosts);
  if (inventory.seed !== undefined) {
    const seed = inventory.hosts[inventory.seed];
    if (!seed) problems.push(`seed: unknown host '${inventory.seed}'; known: ${names.join(', ')}`);
    else if (!seed.builder) problems.push(`seed: host '${inventory.seed}' has no "builder" entry, so it cannot build`);
  }
  // The coordinator may be a target too (deployed last, and here when the run is on it): it is one machine.
  const asTarget = inventory.hosts[inventory.coordinator.name];
  if (asTarget && asTarget.system !== inventory.coordinator.system) {
    problems.push(`hosts.${inventory.coordinator.name}.system: ${asTarget.system}, but coordinator.system says ${inventory.coordinator.system} for the same machine`);
  }
  return problems;
}

export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path
    .map((key, i) => {
      const text = String(key);
      if (typeof key === 'number') return `[${key}]`;
      const plain = /^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(text);
      return plain ? (i === 0 ? text : `.${text}`) : `[${JSON.stringify(text)}]`;
    })
    .join('');
}

function describeIssue(issue: z.core.$ZodIssue, prefix: readonly PropertyKey[] = []): string[] {
  const path = [...prefix, ...issue.path];
  // Invalid record keys (host names) carry the reason in nested issues.
  if (issue.code === 'invalid_key' && issue.issues.length) {
    return issue.issues.map((inner) => `${formatPath(path)}: invalid host name: ${inner.message}`);
  }
  if (issue.code === 'unrecognized_keys') {
    return [`${formatPath(path)}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`];
  }
  if (issue.code === 'invalid_type' && /received undefined$/.test(issue.message)) {
    return [`${formatPath(path)}: required (${issue.expected})`];
  }
  return [`${formatPath(path)}: ${issue.message}`];
}
