/**
 * A rollback's stage 2: read each host's system generations (as its deploy
 * user) and choose the one it goes back to, so the deploy stage knows its
 * `{{toplevel:<host>}}`. Every host is read before any is switched: a host
 * without the asked-for generation fails the run while all are untouched.
 */
import type { ListrTask } from 'listr2';
import { StageError } from '../errors.ts';
import { toplevelValues } from '../plan/placeholders.ts';
import type { RollbackTarget } from '../plan/types.ts';
import { type HostGenerations, parseGenerations, previousGeneration, type SystemGeneration } from '../remote/generations.ts';
import { filled, type RunContext } from './context.ts';
import { expectSuccess } from './failure.ts';
import { subtaskList } from './subtasks.ts';

export function resolveTask(): ListrTask<RunContext> {
  return {
    title: 'resolve',
    task: (ctx, task) => {
      if (ctx.plan.operation !== 'rollback') throw new Error(`the resolve stage in a ${ctx.plan.operation} run`);
      const { resolve, hosts } = ctx.plan;
      task.title = 'resolve: the generation each host goes back to';
      return subtaskList(
        task,
        hosts.map((host) => ({
          title: `${host}: its generations`,
          run: async (sub: { title: string }) => {
            const { list, to } = resolve.hosts[host]!;
            const command = filled(ctx, list);
            const result = await ctx.executor.run(command, { signal: ctx.signal });
            expectSuccess(`${host}: cannot read its generations`, command, result);
            let generations: HostGenerations;
            try {
              generations = parseGenerations(result.stdout);
            } catch (error) {
              throw new StageError(`${host}: ${(error as Error).message}`);
            }
            const chosen = chooseGeneration(host, generations, to);
            Object.assign(ctx.values, toplevelValues({ [host]: chosen.toplevel }), { [`generation:${host}`]: String(chosen.number) });
            sub.title = `${host}: generation ${generations.profileGeneration ?? '?'} → ${chosen.number} (${chosen.toplevel})`;
          },
        })),
      );
    },
  };
}

/** The generation `to` names on this host; StageError (naming what the host has) when there is none. */
export function chooseGeneration(host: string, generations: HostGenerations, to: RollbackTarget): SystemGeneration {
  const have = generations.generations.map((g) => g.number).join(', ') || 'none';
  if (to.kind === 'previous') {
    const previous = previousGeneration(generations);
    if (previous) return previous;
    throw new StageError(
      generations.profileGeneration === undefined
        ? `${host}: no system profile generation to go back from (generations: ${have})`
        : `${host}: no generation before ${generations.profileGeneration} to go back to (generations: ${have})`,
    );
  }
  if (to.kind === 'generation') {
    const found = generations.generations.find((g) => g.number === to.number);
    if (found) return found;
    throw new StageError(`${host}: has no generation ${to.number} (generations: ${have})`);
  }
  // The newest generation with that toplevel: switching to it is what the run undid.
  const found = generations.generations.filter((g) => g.toplevel === to.toplevel).at(-1);
  if (found) return found;
  throw new StageError(`${host}: no generation is ${to.toplevel}, which run ${to.run} found there (deleted or garbage-collected?); generations: ${have}`);
}
