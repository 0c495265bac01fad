/**
 * What a plan's builds and waves say about the order of the deploy stage,
 * read the same way by the planner, --dry-run's text, the confirmation
 * question and the deploy stage (which runs the waves and never re-plans).
 */
import type { RunnablePlan, SystemBuild } from './types.ts';

/** A system build's preferred seed: its first builder, or the coordinator when the system is built here. */
export function preferredSeed(build: SystemBuild, coordinator: string): string {
  return build.builders[0]?.host ?? coordinator;
}

/** The preferred seeds of the systems built on builders: the hosts that, as targets, go first. */
export function builderSeeds(builds: readonly SystemBuild[]): string[] {
  return builds.flatMap((build) => build.builders.slice(0, 1).map((builder) => builder.host));
}

/**
 * Whether wave `index` is one the planner puts last and alone (lib/plan/assemble.ts planWaves): the
 * cache host's or this machine's, which go only when nothing failed before them.
 */
export function isLastAloneWave(plan: RunnablePlan, index: number): boolean {
  const wave = plan.waves[index]!;
  return index > 0 && wave.length === 1 && (wave[0] === plan.coordinator.name || plan.deploy.hosts[wave[0]!]!.target.local === true);
}
