/** Stage 3: build every selected toplevel on the seed, once, land it in the cache host's store and pin it there. */
import type { ListrTask } from 'listr2';
import { gcRootHints } from '../cache/hints.ts';
import { StageError } from '../errors.ts';
import { BuildLogParser, drvName, parseBuildResults } from '../nix/build-log.ts';
import { planCopyToCoordinator, planPinRoots } from '../plan.ts';
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

      const outPaths = plan.hosts.map((h) => toplevels[h]!.outPath);
      const copy = planCopyToCoordinator(plan, outPaths);
      if (copy) {
        task.output = `copying the toplevels to ${plan.inventory.coordinator.name}`;
        const copied = await ctx.executor.run(copy, { signal: ctx.signal });
        expectSuccess(`copying the result to ${plan.inventory.coordinator.name} failed`, copy, copied);
      }

      // Pinned by us too: the post-build hook that should pin them may be missing.
      const { gcRootDir } = plan.inventory.cache;
      const pin = planPinRoots(plan, outPaths);
      task.output = `pinning the toplevels in ${gcRootDir} (${pin.on})`;
      for (const command of pin.commands) {
        const pinned = await ctx.executor.run(command, { signal: ctx.signal });
        expectSuccess(`pinning the toplevels on ${plan.inventory.coordinator.name} failed`, command, pinned, [gcRootHints.missingRoot(gcRootDir)]);
      }
      ctx.pinnedRoots = pin.roots.map((root) => ({ ...root, on: pin.on }));
      task.title = `seed build on ${plan.seed}: ${summarizeBuilds(parser.builds.map((b) => drvName(b.drvPath)))}; pinned in ${gcRootDir}`;
    },
    rendererOptions: { outputBar: 5 },
  };
}

function summarizeBuilds(names: readonly string[]): string {
  if (names.length === 0) return 'nothing to build, all in the store already';
  const shown = names.slice(0, 4).join(', ');
  return `built ${names.length} derivation${names.length > 1 ? 's' : ''} (${shown}${names.length > 4 ? ', …' : ''})`;
}
