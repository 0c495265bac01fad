/**
 * Stage 5: every host through lib/stages/deploy-host.ts in the plan's
 * waves: the canaries first when there are any (--canary; the seeds with
 * --rolling), the cache host and this machine (a coordinator deploying itself) last.
 * Without --rolling the rest go at once (at most `concurrency` at a time);
 * with it, in health-checked waves that stop at the first failure unless
 * --keep-going. Hosts not started stay untouched.
 *
 * Every host is a row under the stage from the start, whatever its wave: a
 * later wave's hosts wait for the wave before theirs to end (and say so),
 * and are skipped, "not started", when a failure there stops the rollout.
 * A running host's row shows its elapsed time, and below it what it is
 * doing now (the step, or nixos-rebuild's latest line).
 */
import type { ListrTask } from 'listr2';
import pLimit from 'p-limit';
import { InterruptedError, StageError } from '../errors.ts';
import { summarizeClosureDiff } from '../nix/closure-diff.ts';
import { withProgressTitle } from '../report/progress.ts';
import { activationName } from '../plan/types.ts';
import { isLastAloneWave } from '../plan/waves.ts';
import { closeConnections, type RunContext } from './context.ts';
import { deployHost } from './deploy-host.ts';
import { stageFailure, type SubtaskWrapper, subtaskList } from './subtasks.ts';

export function deployTask(): ListrTask<RunContext> {
  return {
    title: 'deploy',
    task: (ctx, task) => {
      const { deploy, goal } = ctx.plan;
      // A build's plan has no deploy stage in its `stages`: reaching here with it is a bug.
      if (goal === 'build') throw new Error('the deploy stage in a --goal build run');
      const plan = ctx.plan;
      // The hosts that built: a system built here has no seed among the targets.
      const seeds = new Set(plan.operation === 'deploy' ? plan.builds.filter((b) => b.on === 'builders').map((b) => ctx.seeds[b.system]) : []);
      const { waves } = ctx.plan;
      const rollback = ctx.plan.operation === 'rollback';
      const what = deploy.diffOnly ? 'compare closures, activate nothing (--dry-run --diff)' : `${rollback ? 'switch back' : 'deploy'} (${goal}`;
      task.title = deploy.diffOnly ? what : `${what}${deploy.rolling ? `, rolling in waves of ${deploy.concurrency}` : ''})`;
      const limit = pLimit(deploy.concurrency);
      // Where the rollout stopped: the first wave whose failure stops the later ones.
      let stoppedAfter: number | undefined;
      let firstFailed: number | undefined;
      // A canary wave (the plan's first, when it has canaries) stops the rest when it fails.
      const stops = (index: number) => (index === 0 && deploy.canaries.length > 0) || (deploy.rolling && !deploy.keepGoing);
      // The cache host's and this machine's waves (the plan's last, alone: isLastAloneWave) go only when nothing failed before them, unless --keep-going.
      const rollout = new Waves(
        waves.map((wave) => wave.length),
        (index, failed) => {
          if (failed) firstFailed ??= index;
          if (failed && stoppedAfter === undefined && stops(index)) stoppedAfter = index;
        },
      );

      const hosts = waves.flatMap((wave, index) =>
        wave.map((host) => {
          const label = `wave ${index + 1}/${waves.length}`;
          return {
            title: seeds.has(host) ? `${host} (seed, ${label})` : deploy.hosts[host]!.target.local ? `${host} (this machine, ${label})` : `${host} (${label})`,
            run: async (sub: SubtaskWrapper) => {
              let failed = false;
              try {
                if (index > 0) {
                  sub.output = `${host}: waiting for wave ${index}/${waves.length} (${waves[index - 1]!.join(', ')})`;
                  await rollout.ended(index - 1);
                }
                if (ctx.signal.aborted) throw new InterruptedError(`${host}: not started, interrupted`);
                const stoppedBy = stoppedAfter ?? (isLastAloneWave(plan, index) && !deploy.keepGoing ? firstFailed : undefined);
                if (stoppedBy !== undefined) {
                  sub.skip(`${host}: not started (wave ${stoppedBy + 1} failed)`);
                  return;
                }
                if (limit.activeCount >= limit.concurrency) sub.output = `${host}: waiting for a free slot`;
                await limit(async () => {
                  if (ctx.signal.aborted) throw new InterruptedError(`${host}: not started, interrupted`);
                  const progress = withProgressTitle(sub);
                  try {
                    const deployment = {
                      plan: deploy.hosts[host]!,
                      goal,
                      confirmTimeoutSeconds: deploy.confirmTimeoutSeconds,
                      values: ctx.values,
                      activation: activationName(plan),
                      diffOnly: deploy.diffOnly,
                    };
                    // Prefixed: the plain renderer (CI logs) interleaves the hosts' lines.
                    await deployHost(deployment, ctx, (line) => (sub.output = `${host}: ${line}`));
                    const ended = ctx.recorder.hosts.get(host);
                    const changes = ended?.diff ? ` — ${summarizeClosureDiff(ended.diff)}` : '';
                    progress.task.title = ended?.state === 'not-started' ? `${host}: not activated (${ended.note ?? ''})${changes}` : `${host}: ${goal} done${changes}`;
                  } finally {
                    progress.stop();
                  }
                });
              } catch (error) {
                failed = true;
                throw error;
              } finally {
                rollout.end(index, failed);
                // Nothing after its deploy uses the host's connection: closed now (not waited for), not at the run's end.
                void closeConnections(ctx, [deploy.hosts[host]!.closeConnection]);
              }
            },
          };
        }),
      );

      return subtaskList(task, hosts, {
        noun: 'hosts',
        failure: (failures) => {
          const error = stageFailure(failures);
          if (!(error instanceof StageError) || stoppedAfter === undefined) return error;
          const left = waves.slice(stoppedAfter + 1).flat();
          return left.length ? new StageError(`${error.message}\nnot started: ${left.join(', ')}`, error.hints) : error;
        },
      });
    },
    rendererOptions: { outputBar: 3 },
  };
}

/** The waves' order: wave i + 1 starts once every host of wave i has ended and `onEnd` has judged it. */
class Waves {
  private readonly left: number[];
  private readonly failed: boolean[];
  private readonly release: (() => void)[] = [];
  private readonly done: Promise<void>[];

  constructor(
    sizes: readonly number[],
    private readonly onEnd: (index: number, failed: boolean) => void,
  ) {
    this.left = [...sizes];
    this.failed = sizes.map(() => false);
    this.done = sizes.map((_, i) => new Promise<void>((resolve) => (this.release[i] = resolve)));
  }

  /** Resolves when every host of wave `index` has ended. */
  ended(index: number): Promise<void> {
    return this.done[index]!;
  }

  /** A host of wave `index` ended; the last one's end judges the wave, then lets the next go. */
  end(index: number, failed: boolean): void {
    if (failed) this.failed[index] = true;
    this.left[index]! -= 1;
    if (this.left[index] !== 0) return;
    this.onEnd(index, this.failed[index]!);
    this.release[index]!();
  }
}
