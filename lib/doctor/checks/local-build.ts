/**
 * This machine cannot build the builders' systems by itself, so nothing
 * falls back to emulation when a builder is offline.
 *
 * Read from Nix's configuration, not probed with a build: on Nix 2.8 a
 * `nix build --max-jobs 0 --builders ''` fails with "unable to start any
 * build" whatever the platforms, and with jobs allowed a capable machine
 * would really build (under QEMU). Nix itself decides with these two
 * settings: a derivation builds locally only if its system is `system` or
 * in `extra-platforms`.
 */
import type { Inventory } from '../../inventory/schema.ts';
import { localBuildHints } from '../hints.ts';
import { readNixConfig } from '../../nix/config.ts';
import { shortCommandTimeoutMs } from '../../remote/fleet.ts';
import { parseNixConfig } from '../nix-config.ts';
import { runCommand } from '../probes.ts';
import type { Check } from '../types.ts';
import { commandFailed } from './outcome.ts';

export function localBuildCheck(inventory: Inventory): Check {
  const systems = [...new Set(Object.values(inventory.hosts).filter((h) => h.builder).map((h) => h.system))];
  return {
    id: 'local-build',
    title: `this machine builds ${systems.join(', ')} only through the builders`,
    async run(ctx) {
      const runs = await readNixConfig((argv) => runCommand(ctx, { argv, timeoutMs: shortCommandTimeoutMs(inventory) }, parseNixConfig));
      const ran = runs.at(-1)!;
      const tried = runs.map((r) => r.tried);
      if (ran.value === undefined) return commandFailed('reading the Nix configuration', ran, [], tried);
      const { system, extraPlatforms } = ran.value;
      const found = `system ${system}, extra-platforms ${extraPlatforms.join(' ') || '(none)'}`;
      const emulated = systems.filter((s) => s !== system && extraPlatforms.includes(s));
      if (emulated.length) {
        return { status: 'fail', summary: `${found}: would build ${emulated.join(', ')} itself`, tried, hints: emulated.map(localBuildHints.emulation) };
      }
      const native = systems.filter((s) => s === system);
      if (native.length) return { status: 'pass', summary: `${found}: ${native.join(', ')} is this machine's own system`, tried };
      return { status: 'pass', summary: found, tried };
    },
  };
}
