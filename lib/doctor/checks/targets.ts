/**
 * Each target answers SSH as its deploy user with its key and reports its
 * current system generation, read the way the deploy reads it before it
 * touches the host (lib/remote/scripts.ts PROBE_GENERATION).
 */
import type { HostName, Inventory } from '../../inventory/schema.ts';
import { remoteArgv, sshDestination, SUDO_HINT } from '../../remote/host.ts';
import { type Here, reachTarget, shortCommandTimeoutMs } from '../../remote/fleet.ts';
import { runCommand } from '../probes.ts';
import { targetHints } from '../hints.ts';
import type { Check } from '../types.ts';
import { commandFailed, sshFailed } from './outcome.ts';

/** readlink -f prints a missing path as given: only a store path is a system. */
export function asStorePath(path: string): string | undefined {
  return path.startsWith('/nix/store/') ? path : undefined;
}

/** `here`: the host that is this machine, checked without ssh as the deploy reaches it (as the orchestrator's user, sudo -n). */
export function targetCheck(inventory: Inventory, host: HostName, here?: Here): Check {
  const target = reachTarget(inventory, host, here);
  return {
    id: `target:${host}`,
    title: target.local ? `target ${host} (this machine) answers here as ${target.user}` : `target ${host} answers as ${sshDestination(target)}`,
    async run(ctx) {
      const probe = await ctx.probes.generation(host);
      const tried = [probe.tried];
      if (probe.value === undefined) {
        return commandFailed(sshFailed(probe.result) ? 'ssh' : 'reading its generation', probe, [targetHints.ssh(target)]);
      }
      // Every root step of the deploy goes through sudo -n for a non-root deploy user.
      if (target.escalation === 'sudo') {
        const sudo = await runCommand(ctx, { argv: remoteArgv(target, ['true'], { asRoot: true }), timeoutMs: shortCommandTimeoutMs(inventory) }, () => true);
        tried.push(sudo.tried);
        if (sudo.value === undefined) return commandFailed('sudo -n (no password prompt)', sudo, [SUDO_HINT], tried);
      }
      const { profileLink } = probe.value;
      const profilePath = asStorePath(probe.value.profilePath);
      const running = asStorePath(probe.value.currentSystem);
      if (!profileLink || !profilePath) {
        return { status: 'warn', summary: `no ${inventory.paths.profile} yet`, tried, hints: [targetHints.neverDeployed()] };
      }
      const differs = running && running !== profilePath ? `; running ${running} (not activated yet, or a test activation)` : '';
      return { status: 'pass', summary: `${profileLink} → ${profilePath}${differs}`, tried };
    },
  };
}
