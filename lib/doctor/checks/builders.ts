/**
 * Each builder answers SSH as its builder user with its key (as Nix will
 * reach it), has nix-store on its PATH (Nix builds over ssh:// with
 * `nix-store --serve`) and can build the system it is listed for.
 */
import type { HostName, Inventory } from '../../inventory/schema.ts';
import { builderProbeArgv } from '../../nix/commands.ts';
import { builderHost, shortCommandTimeoutMs } from '../../remote/fleet.ts';
import { remoteArgv, sshDestination } from '../../remote/host.ts';
import { builderHints } from '../hints.ts';
import { readNixConfig } from '../../nix/config.ts';
import { parseNixConfig, platforms } from '../nix-config.ts';
import { runCommand } from '../probes.ts';
import type { Check } from '../types.ts';
import { commandFailed, sshFailed } from './outcome.ts';

export function builderCheck(inventory: Inventory, host: HostName): Check {
  const entry = inventory.hosts[host]!;
  const target = builderHost(inventory, host);
  if (!target) throw new Error(`host ${host} is not a builder`);
  const timeoutMs = shortCommandTimeoutMs(inventory);
  return {
    id: `builder:${host}`,
    title: `builder ${host} builds ${entry.system} as ${sshDestination(target)}`,
    async run(ctx) {
      const version = await runCommand(ctx, { argv: builderProbeArgv(target), timeoutMs }, (out) => out.trim());
      if (version.value === undefined) {
        return sshFailed(version.result)
          ? commandFailed('ssh', version, [builderHints.sshKey(target), builderHints.offline()])
          : commandFailed('nix-store --version', version, [builderHints.noNixStore(target.user)]);
      }
      const runs = await readNixConfig((argv) => runCommand(ctx, { argv: remoteArgv(target, argv), timeoutMs }, parseNixConfig));
      const config = runs.at(-1)!;
      const tried = [version.tried, ...runs.map((r) => r.tried)];
      if (config.value === undefined) return commandFailed('reading the Nix configuration', config, [], tried);
      const can = platforms(config.value);
      if (!can.includes(entry.system)) {
        return {
          status: 'fail',
          summary: `${version.value}; builds ${can.join(', ')} — not ${entry.system}`,
          tried,
          hints: [builderHints.wrongSystem(host, entry.system)],
        };
      }
      const how = config.value.system === entry.system ? 'natively' : 'through extra-platforms';
      return { status: 'pass', summary: `${version.value}; builds ${entry.system} ${how}`, tried };
    },
  };
}
