/**
 * Which nixos-rebuild the inventory's command is on this machine, read from
 * its --help as the deploy's preflight reads it, and whether the deploy can
 * give it the flags each target needs (sudo for a non-root user, no re-exec
 * across systems).
 */
import type { Inventory } from '../../inventory/schema.ts';
import { describeTool, probeRebuildTool, REBUILD_NOT_FOUND_HINT, rebuildHelpArgv } from '../../nix/nixos-rebuild.ts';
import { planRebuildFlags, planTargets } from '../../plan/assemble.ts';
import { localNixSystem } from '../../nix/system.ts';
import type { Check } from '../types.ts';

const INTERESTING = ['--fast', '--no-reexec', '--sudo', '--use-remote-sudo', '--store-path'];

export function nixosRebuildCheck(inventory: Inventory): Check {
  const command = inventory.nixosRebuild.command;
  return {
    id: 'nixos-rebuild',
    title: `nixos-rebuild on this machine (${command.join(' ')})`,
    async run(ctx) {
      const tried = [rebuildHelpArgv(command).join(' ')];
      const tool = await probeRebuildTool(ctx.executor, command, inventory.timeouts.connectSeconds * 1000);
      if (!tool.found) {
        return { status: 'fail', summary: `${describeTool(tool)} (${tool.error})`, tried, hints: [REBUILD_NOT_FOUND_HINT] };
      }
      const { problems } = planRebuildFlags(inventory, planTargets(inventory, Object.keys(inventory.hosts), false), tool, localNixSystem());
      const accepts = INTERESTING.filter((flag) => tool.flags.includes(flag));
      const summary = `${describeTool(tool)}${tool.flavour === 'unknown' ? '' : `; accepts ${accepts.join(', ') || 'none'} of ${INTERESTING.join(', ')}`}`;
      if (problems.length) return { status: 'fail', summary, tried, details: problems };
      if (tool.flavour === 'unknown') {
        return { status: 'warn', summary, tried, details: [tool.error ?? ''], hints: ['The deploy will pass only --fast and --use-remote-sudo, which both flavours accept.'] };
      }
      return { status: 'pass', summary, tried };
    },
  };
}
