/**
 * Stage 5: nixos-rebuild on every host, the seed first, then the others
 * at most `concurrency` at a time. A host that fails does not stop the
 * others already running; hosts not yet started stay untouched when the seed
 * fails or the run is interrupted.
 */
import type { ListrTask } from 'listr2';
import pLimit from 'p-limit';
import { InterruptedError, StageError } from '../errors.ts';
import { succeeded } from '../exec/types.ts';
import type { RunContext } from './context.ts';
import { describeFailure } from './failure.ts';
import { runSubtasks } from './subtasks.ts';

export function deployTask(): ListrTask<RunContext> {
  return {
    title: 'deploy',
    task: async (ctx, task) => {
      const { deploy, goal } = ctx.plan;
      task.title = `deploy (${goal})`;
      const limit = pLimit(deploy.concurrency);
      for (const wave of deploy.waves) {
        if (ctx.signal.aborted) throw new InterruptedError();
        await runSubtasks(
          task,
          ctx,
          wave.map((host) => ({
            title: host === ctx.plan.seed ? `${host} (seed)` : host,
            run: (sub) => {
              if (limit.activeCount >= limit.concurrency) sub.output = `${host}: waiting for a free slot`;
              return limit(async () => {
                if (ctx.signal.aborted) throw new InterruptedError(`${host}: not started, interrupted`);
                const command = deploy.commands[host]!;
                ctx.recorder.startHost(host);
                const result = await ctx.executor.run(command, {
                  signal: ctx.signal,
                  // Prefixed: the plain renderer (CI logs) interleaves the hosts' lines.
                  onLine: (line) => (sub.output = `${host}: ${line}`),
                });
                if (result.aborted) {
                  ctx.recorder.endHost(host, 'interrupted');
                  throw new InterruptedError(`${host}: interrupted during nixos-rebuild`);
                }
                if (!succeeded(result)) {
                  ctx.recorder.endHost(host, 'failed');
                  throw new StageError(describeFailure(`${host} failed`, command, result));
                }
                ctx.recorder.endHost(host, 'deployed');
                sub.title = `${host}: ${goal} done`;
              });
            },
          })),
        );
      }
    },
    rendererOptions: { outputBar: 3 },
  };
}
