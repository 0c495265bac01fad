/** State shared by the stages of one run. */
import type { Executor } from '../exec/types.ts';
import type { BuildRecord } from '../nix/build-log.ts';
import type { DeployPlan } from '../plan.ts';
import type { PinnedRoot } from '../report/report.ts';
import type { RunRecorder } from '../report/timing.ts';

export interface Toplevel {
  readonly drvPath: string;
  readonly outPath: string;
}

export interface RunContext {
  /** replaced when preflight fails over to another seed */
  plan: DeployPlan;
  /** why the seed changed, for the report */
  seedFailover?: string;
  readonly executor: Executor;
  readonly signal: AbortSignal;
  readonly recorder: RunRecorder;
  toplevels?: Record<string, Toplevel>;
  builds: BuildRecord[];
  /** GC roots made on the cache host after the seed build */
  pinnedRoots?: PinnedRoot[];
  /** what was accepted against the defaults (--allow-unsigned), for the output and the report */
  warnings?: string[];
}
