/** Stage 3: build every selected toplevel on the seed, once, and land it in the cache host's store. */
import type { ListrTask } from 'listr2';
import { StageError } from '../errors.ts';
import { BuildLogParser, drvName, parseBuildResults } from '../nix/build-log.ts';
import { planCopyToCoordinator } from '../plan.ts';
import type { RunContext } from './context.ts';
import { expectSuccess } from './failure.ts';

export function seedBuildTask(): ListrTask<RunContext> {
  return {
    title: 'seed build',
    task: async (ctx, task) => {
      const { plan } = ctx;
      task.title = `seed build on ${plan.seed}`;
      const parser = new BuildLogParser();
      const result = await ctx.executor.run(plan.seedBuild, {
        signal: ctx.signal,
        onLine: (line) => {
          const event = parser.parse(line);
          if (!event) return;
          if (event.kind === 'build-start') task.output = `building ${drvName(event.drvPath)} on ${event.machine ?? 'this machine'}`;
          else if (event.kind === 'build-log') task.output = `${event.drvName}> ${event.line}`;
          else task.output = event.text;
        },
      });
      ctx.builds.push(...parser.builds);
      expectSuccess(`seed build on ${plan.seed} failed`, plan.seedBuild, result);

      const built = new Set(parseBuildResults(result.stdout).flatMap((r) => Object.values(r.outputs)));
      const toplevels = ctx.toplevels ?? {};
      const missing = plan.hosts.filter((host) => !built.has(toplevels[host]?.outPath ?? ''));
      if (missing.length) throw new StageError(`the seed build did not produce the evaluated toplevel of ${missing.join(', ')}`);

      const local = parser.builds.filter((b) => b.machine === undefined);
      if (local.length) {
        throw new StageError(`built locally instead of on ${plan.seed}: ${local.map((b) => drvName(b.drvPath)).join(', ')}`);
      }

      const copy = planCopyToCoordinator(plan, plan.hosts.map((h) => toplevels[h]!.outPath));
      if (copy) {
        task.output = `copying the toplevels to ${plan.inventory.coordinator.name}`;
        const copied = await ctx.executor.run(copy, { signal: ctx.signal });
        expectSuccess(`copying the result to ${plan.inventory.coordinator.name} failed`, copy, copied);
      }
      task.title = `seed build on ${plan.seed}: ${summarizeBuilds(parser.builds.map((b) => drvName(b.drvPath)))}`;
    },
    rendererOptions: { outputBar: 5 },
  };
}

function summarizeBuilds(names: readonly string[]): string {
  if (names.length === 0) return 'nothing to build, all in the store already';
  const shown = names.slice(0, 4).join(', ');
  return `built ${names.length} derivation${names.length > 1 ? 's' : ''} (${shown}${names.length > 4 ? ', …' : ''})`;
}
