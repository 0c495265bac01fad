/** Paths to committed fixtures and the fleet inventory. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseInventory } from '../../lib/inventory/load.ts';
import type { Inventory } from '../../lib/inventory/schema.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export function fixture(name: string): string {
  return readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');
}

/** hosts.json as shipped: the whole fleet. */
export function wholeFleetInventoryText(): string {
  return readFileSync(new URL('../../hosts.json', import.meta.url), 'utf8');
}

/** hosts.json's text with its aarch64 hosts only, deploying with nixos-rebuild (see {@link fleetInventory}). */
export function fleetInventoryText(): string {
  const json = withNixosRebuild(JSON.parse(wholeFleetInventoryText()));
  for (const name of X86_HOSTS) delete json.hosts[name];
  return `${JSON.stringify(json, null, 2)}\n`;
}

/**
 * The tests' inventories pin `deploy.method: nixos-rebuild`: most tests are
 * about the deploy's steps around a nixos-rebuild, and a tool probed as
 * unknown would otherwise choose the direct method (lib/nix/deploy-method.ts;
 * test/unit/deploy-method.test.ts covers the default and the direct steps).
 */
function withNixosRebuild(json: any): any {
  json.deploy ??= { method: 'nixos-rebuild' };
  return json;
}

/** A file holding {@link fleetInventoryText}: an --inventory for command-line tests of the aarch64 fleet. */
export function fleetInventoryPath(): string {
  if (fleetPath === undefined) {
    fleetPath = join(mkdtempSync(join(tmpdir(), 'fleet-inventory-')), 'hosts.json');
    writeFileSync(fleetPath, fleetInventoryText());
  }
  return fleetPath;
}
let fleetPath: string | undefined;

/** The x86_64 machines of hosts.json (the coordinators), left out of {@link fleetInventory}. */
export const X86_HOSTS = ['hawk', 'calypso'];

/**
 * The repository's hosts.json with its aarch64 hosts only (opi01–opi03, one
 * system: what most tests deploy) and deploy.method nixos-rebuild,
 * optionally changed by `edit` (applied to the raw JSON).
 */
export function fleetInventory(edit?: (json: any) => void): Inventory {
  const json = JSON.parse(fleetInventoryText());
  edit?.(json);
  return parseInventory(JSON.stringify(json));
}

/** The repository's hosts.json as it is: the whole fleet, two systems (x86_64 hawk and calypso, aarch64 opis). */
export function wholeFleetInventory(edit?: (json: any) => void): Inventory {
  const json = withNixosRebuild(JSON.parse(wholeFleetInventoryText()));
  edit?.(json);
  return parseInventory(JSON.stringify(json));
}

export const FIXTURE_TOPLEVEL = '/nix/store/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn-fixture-toplevel';
export const FIXTURE_KEY = fixture('narinfo/fixture-cache-1.pub').trim();
export const OTHER_KEY = fixture('narinfo/other-cache-1.pub').trim();
