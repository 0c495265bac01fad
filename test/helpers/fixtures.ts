/** Paths to committed fixtures and the fleet inventory. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseInventory } from '../../lib/inventory/load.ts';
import type { Inventory } from '../../lib/inventory/schema.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export function fixture(name: string): string {
  return readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');
}

export function fleetInventoryText(): string {
  return readFileSync(new URL('../../hosts.json', import.meta.url), 'utf8');
}

/** The repository's hosts.json, optionally changed by `edit` (applied to the raw JSON). */
export function fleetInventory(edit?: (json: any) => void): Inventory {
  const json = JSON.parse(fleetInventoryText());
  edit?.(json);
  return parseInventory(JSON.stringify(json));
}

export const FIXTURE_TOPLEVEL = '/nix/store/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn-fixture-toplevel';
export const FIXTURE_KEY = fixture('narinfo/fixture-cache-1.pub').trim();
export const OTHER_KEY = fixture('narinfo/other-cache-1.pub').trim();
