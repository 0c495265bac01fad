/**
 * Which nixos-rebuild the inventory's command is on this machine, read from
 * its --help as the deploy's preflight reads it, which deploy method a
 * deploy from here would use (lib/nix/deploy-method.ts), and, when that runs
 * nixos-rebuild, whether the deploy can give it the flags each target needs
 * (sudo for a non-root user, no re-exec across systems).
 */
import type { Inventory } from '../../inventory/schema.ts';
import { chooseDeployMethod, describeDeployMethod, runsNixosRebuild } from '../../nix/deploy-method.ts';
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
      const method = chooseDeployMethod(tool, inventory.deploy?.method);
      const deploysBy = `a deploy would use: ${describeDeployMethod(method)} (${method.why})`;
      if (!tool.found) {
        // The direct method runs no nixos-rebuild: a machine without one (a CI runner) deploys all the same.
        if (!runsNixosRebuild(method)) return { status: 'pass', summary: `${describeTool(tool)} (${tool.error}); ${deploysBy}`, tried };
        return { status: 'fail', summary: `${describeTool(tool)} (${tool.error})`, tried, details: [deploysBy], hints: [REBUILD_NOT_FOUND_HINT] };
      }
      const { problems } = planRebuildFlags(inventory, planTargets(inventory, Object.keys(inventory.hosts), false), tool, localNixSystem());
      const accepts = INTERESTING.filter((flag) => tool.flags.includes(flag));
      const summary = `${describeTool(tool)}${tool.flavour === 'unknown' ? '' : `; accepts ${accepts.join(', ') || 'none'} of ${INTERESTING.join(', ')}`}; ${deploysBy}`;
      if (!runsNixosRebuild(method)) return { status: 'pass', summary, tried };
      if (problems.length) return { status: 'fail', summary, tried, details: problems };
      if (tool.flavour === 'unknown') {
        return { status: 'warn', summary, tried, details: [tool.error ?? ''], hints: ['The deploy will pass only --fast and --use-remote-sudo, which both flavours accept.'] };
      }
      return { status: 'pass', summary, tried };
    },
  };
}
