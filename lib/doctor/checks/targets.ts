/** Each target answers SSH as its deploy user with its key and reports its current system generation. */
import type { HostName, Inventory } from '../../inventory/schema.ts';
import { deployTarget, destination } from '../../ssh.ts';
import { targetHints } from '../hints.ts';
import type { Check } from '../types.ts';
import { commandFailed, sshFailed } from './outcome.ts';

export function targetCheck(inventory: Inventory, host: HostName): Check {
  const target = deployTarget(inventory.hosts[host]!);
  return {
    id: `target:${host}`,
    title: `target ${host} answers as ${destination(target)}`,
    async run(ctx) {
      const profile = await ctx.probes.systemProfile(host);
      const tried = [profile.tried];
      if (profile.value === undefined) {
        return commandFailed(sshFailed(profile.result) ? 'ssh' : 'listing the system profiles', profile, [targetHints.ssh(target)]);
      }
      const { generation, storePath, generations } = profile.value;
      if (!storePath) return { status: 'warn', summary: 'no system profile yet', tried, hints: [targetHints.neverDeployed()] };
      const which = generation === undefined ? 'current system' : `system generation ${generation} (${generations} kept)`;
      return { status: 'pass', summary: `${which}: ${storePath}`, tried };
    },
  };
}
