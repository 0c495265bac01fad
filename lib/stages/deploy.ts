/**
 * Stage 5: every host through lib/stages/deploy-host.ts, the seed first.
 * Without --rolling the rest go at once (at most `concurrency` at a time);
 * with it, in health-checked waves that stop at the first failure unless
 * --keep-going. Hosts not started stay untouched.
 */
import type { ListrTask } from 'listr2';
import pLimit from 'p-limit';
import { InterruptedError, StageError } from '../errors.ts';
import type { RunContext } from './context.ts';
import { deployHost } from './deploy-host.ts';
import { runSubtasks } from './subtasks.ts';

export function deployTask(): ListrTask<RunContext> {
  return {
    title: 'deploy',
    task: async (ctx, task) => {
      const { deploy, goal } = ctx.plan;
      const { host: seed, waves } = ctx.seed;
      task.title = `deploy (${goal}${deploy.rolling ? `, rolling in waves of ${deploy.concurrency}` : ''})`;
      const limit = pLimit(deploy.concurrency);
      const failures: StageError[] = [];
      for (const [index, wave] of waves.entries()) {
        if (ctx.signal.aborted) throw new InterruptedError();
        const label = `wave ${index + 1}/${waves.length}`;
        try {
          await runSubtasks(
            task,
            ctx,
            wave.map((host) => ({
              title: host === seed ? `${host} (seed, ${label})` : `${host} (${label})`,
              run: (sub) => {
                if (limit.activeCount >= limit.concurrency) sub.output = `${host}: waiting for a free slot`;
                return limit(async () => {
                  if (ctx.signal.aborted) throw new InterruptedError(`${host}: not started, interrupted`);
                  // Prefixed: the plain renderer (CI logs) interleaves the hosts' lines.
                  const deployment = { plan: deploy.hosts[host]!, goal, confirmTimeoutSeconds: deploy.confirmTimeoutSeconds, values: ctx.values };
                  await deployHost(deployment, ctx, (line) => (sub.output = `${host}: ${line}`));
                  sub.title = `${host}: ${goal} done`;
                });
              },
            })),
          );
        } catch (error) {
          if (!(error instanceof StageError)) throw error;
          failures.push(error);
          const isSeedWave = index === 0 && wave.includes(seed);
          const stop = isSeedWave || (deploy.rolling && !deploy.keepGoing);
          if (stop) {
            const left = waves.slice(index + 1).flat();
            throw left.length ? new StageError(`${error.message}\nnot started: ${left.join(', ')}`, error.hints) : error;
          }
        }
      }
      if (failures.length) throw new StageError(failures.map((f) => f.message).join('\n'));
    },
    rendererOptions: { outputBar: 3 },
  };
}
