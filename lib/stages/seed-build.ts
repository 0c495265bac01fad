/** Stage 3: build every selected toplevel on the seed, once, land it in the cache host's store and pin it there. */
import type { ListrTask } from 'listr2';
import { gcRootHints } from '../cache/hints.ts';
import { StageError } from '../errors.ts';
import { BuildLogRecorder, type BuildRecord, drvName, isBuiltOn, isOutputNoise, parseBuildResults, tailWithoutNoise } from '../nix/build-log.ts';
import { fillText } from '../plan/placeholders.ts';
import { sshDestination } from '../remote/host.ts';
import { deployRun, filled, type RunContext } from './context.ts';
import { expectSuccess } from './failure.ts';

export function seedBuildTask(): ListrTask<RunContext> {
  return {
    title: 'seed build',
    task: async (ctx, task) => {
      const { plan, seed } = deployRun(ctx);
      task.title = `seed build on ${seed.host}`;
      const log = new BuildLogRecorder();
      const build = filled(ctx, seed.build);
      const result = await ctx.executor.run(build, {
        signal: ctx.signal,
        onLine: (line, stream) => {
          const event = log.add(line, stream);
          if (!event || stream === 'stdout') return;
          if (event.kind === 'build-start') task.output = `building ${drvName(event.drvPath)} on ${event.machine ?? 'this machine'}`;
          else if (event.kind === 'build-log') task.output = `${event.drvName}> ${event.line}`;
          else if (!isOutputNoise(event.text)) task.output = event.text;
        },
      });
      // What Nix said it built where: the report's "built on" comes from here, never from the plan.
      ctx.builds.push(...log.builds);
      // Nix names a remote build's machine by the URI its --builders entry starts with.
      const seedUri = seed.builderUri;
      const elsewhere = log.builds.filter((b) => !isBuiltOn(b.machine, seedUri));
      // What the log said; if it said nothing (nix did not start), whatever came out that is neither a log record nor noise (the --json result).
      const told = log.failureLines();
      const shown = told.length ? told : tailWithoutNoise(result);
      const hints = placementHints(log, elsewhere, plan.preflight.nixTrust.user);
      expectSuccess(`seed build on ${seed.host} failed`, build, result, hints, shown);

      const built = new Set(parseBuildResults(result.stdout).flatMap((r) => Object.values(r.outputs)));
      const toplevels = ctx.toplevels ?? {};
      if (elsewhere.length) {
        throw new StageError(`built elsewhere than on ${seed.host} (${seedUri}): ${describeBuilds(elsewhere)}`, hints);
      }
      const missing = plan.hosts.filter((host) => !built.has(toplevels[host]?.outPath ?? ''));
      if (missing.length) throw new StageError(`the seed build did not produce the evaluated toplevel of ${missing.join(', ')}`);

      const coordinator = plan.coordinator.name;
      if (plan.copyToCoordinator) {
        task.output = `copying the toplevels to ${coordinator}`;
        const copy = filled(ctx, plan.copyToCoordinator);
        expectSuccess(`copying the result to ${coordinator} failed`, copy, await ctx.executor.run(copy, { signal: ctx.signal }));
      }

      // Pinned by us too: the post-build hook that should pin them may be missing.
      const { gcRootDir } = plan.preflight;
      const on = plan.coordinator.place.kind === 'local' ? 'local' : sshDestination(plan.coordinator.place.host);
      task.output = `pinning the toplevels in ${gcRootDir} (${on})`;
      for (const planned of plan.pin.commands) {
        const command = filled(ctx, planned);
        const pinned = await ctx.executor.run(command, { signal: ctx.signal });
        expectSuccess(`pinning the toplevels on ${coordinator} failed`, command, pinned, [gcRootHints.missingRoot(gcRootDir)]);
      }
      ctx.pinnedRoots = plan.pin.roots.map((root) => ({ storePath: fillText(root.storePath, ctx.values), root: fillText(root.root, ctx.values), on }));
      task.title = `seed build on ${seed.host}: ${summarizeBuilds(log.builds.map((b) => drvName(b.drvPath)))}; pinned in ${gcRootDir}`;
    },
    rendererOptions: { outputBar: 5 },
  };
}

function describeBuilds(builds: readonly BuildRecord[]): string {
  return builds.map((b) => `${drvName(b.drvPath)} (${b.drvPath}) on ${b.machine ?? 'this machine'}`).join(', ');
}

/**
 * Why Nix may have built somewhere else than on the seed although the
 * command names only the seed in --builders and forbids local builds with
 * --max-jobs 0: a Nix daemon takes max-jobs from any client but ignores
 * --builders from a user not in its trusted-users, and uses its own
 * builders. Daemons from Nix 2.22 (and Lix) say so in the warning the log
 * recorder looks for; Nix 2.4 to 2.21 only at debug level, so without the
 * warning the hint names both causes.
 */
function placementHints(log: BuildLogRecorder, elsewhere: readonly BuildRecord[], user: string): string[] {
  if (log.ignoredSettings.has('builders')) {
    return [`add ${user} to trusted-users in the coordinator's nix.conf (the daemon ignores --builders from untrusted users)`];
  }
  if (elsewhere.length === 0) return [];
  return [
    `Nix did not build on the builder that --builders names, with --max-jobs 0 forbidding local builds: ` +
      `a Nix daemon ignores --builders from users not in its trusted-users (before Nix 2.22 without a warning; ` +
      `nix store info --json tells "trusted"), so add ${user} to trusted-users in the coordinator's nix.conf; ` +
      `otherwise look for what overrides builders or max-jobs (NIX_CONFIG, --option, the machines file)`,
  ];
}

function summarizeBuilds(names: readonly string[]): string {
  if (names.length === 0) return 'nothing to build, all in the store already';
  const shown = names.slice(0, 4).join(', ');
  return `built ${names.length} derivation${names.length > 1 ? 's' : ''} (${shown}${names.length > 4 ? ', …' : ''})`;
}
