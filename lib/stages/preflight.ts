/** Stage 1: the hosts answer over SSH and the cache answers as a Nix binary cache. */
import type { ListrTask } from 'listr2';
import { fetchCacheInfo } from '../cache/client.ts';
import { cacheUnreachableHints } from '../cache/hints.ts';
import { StageError } from '../errors.ts';
import type { RunContext } from './context.ts';
import { outputTail, succeeded } from '../exec/types.ts';
import { type DeployPlan, replanWithSeed } from '../plan.ts';
import { describeTool } from '../nix/nixos-rebuild.ts';
import { expectSuccess } from './failure.ts';
import { runSubtasks } from './subtasks.ts';

export function preflightTask(): ListrTask<RunContext> {
  return {
    title: 'preflight',
    task: async (ctx, task) => {
      const { preflight } = ctx.plan;
      const sshHint = 'Check the address, the key and known_hosts: ssh with the same options must work by hand.';
      await runSubtasks(task, ctx, [
        ...preflight.ssh.map((check) => ({
          title: `${check.host} answers SSH as ${check.role}`,
          run: async (sub: { title: string }) => {
            const result = await ctx.executor.run(check.command, { signal: ctx.signal });
            const isSeed = check.role === 'builder' && check.host === ctx.plan.seed;
            if (isSeed && !succeeded(result) && !result.aborted) {
              const fallback = await firstAnswering(ctx, preflight.seedFallbacks);
              if (fallback) {
                ctx.seedFailover = `seed ${check.host} did not answer (${outputTail(result, 1)[0] ?? `exit ${result.exitCode}`}); ${fallback} builds instead`;
                ctx.plan = replanWithSeed(ctx.plan, fallback);
                sub.title = `${check.host} does not answer: ${fallback} is the seed`;
                return;
              }
            }
            expectSuccess(`${check.host} (${check.role}) does not answer SSH`, check.command, result, [sshHint]);
          },
        })),
        {
          title: 'nixos-rebuild on this machine',
          run: async (sub) => {
            const { tool, problems } = ctx.plan.rebuild;
            if (!tool.found) {
              throw new StageError(`${describeTool(tool)}: ${tool.error}`, ["Run the deploy where NixOS's nixos-rebuild is installed, or set nixosRebuild.command to its path."]);
            }
            if (problems.length) throw new StageError(problems.join('\n'), ['`just nix doctor` shows which nixos-rebuild this is and which flags it accepts.']);
            sub.title = `nixos-rebuild on this machine: ${describeTool(tool)}`;
          },
        },
        {
          title: `cache ${preflight.cacheUrl} answers`,
          run: async (sub) => {
            let storeDir: string;
            let priority: number | undefined;
            try {
              ({ storeDir, priority } = await fetchCacheInfo(preflight.cacheUrl, preflight.requestTimeoutMs, ctx.signal));
            } catch (error) {
              throw new StageError(`cache does not answer: ${(error as Error).message}`, cacheUnreachableHints(preflight.cacheUrl));
            }
            if (storeDir !== '/nix/store') throw new StageError(`cache ${preflight.cacheUrl} serves StoreDir ${storeDir}, not /nix/store`);
            sub.title = `cache ${preflight.cacheUrl} answers (StoreDir ${storeDir}${priority === undefined ? '' : `, priority ${priority}`})`;
          },
        },
      ]);
    },
  };
}

/** Seed failover: the first other builder of the same system that answers. */
async function firstAnswering(ctx: RunContext, fallbacks: DeployPlan['preflight']['seedFallbacks']): Promise<string | undefined> {
  for (const { host, command } of fallbacks) {
    const result = await ctx.executor.run(command, { signal: ctx.signal });
    if (succeeded(result)) return host;
  }
  return undefined;
}
