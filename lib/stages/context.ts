/** State shared by the stages of one run. */
import type { Executor } from '../exec/types.ts';
import type { BuildRecord } from '../nix/build-log.ts';
import type { DeployPlan } from '../plan.ts';
import type { RunRecorder } from '../report/timing.ts';

export interface Toplevel {
  readonly drvPath: string;
  readonly outPath: string;
}

export interface RunContext {
  readonly plan: DeployPlan;
  readonly executor: Executor;
  readonly signal: AbortSignal;
  readonly recorder: RunRecorder;
  toplevels?: Record<string, Toplevel>;
  builds: BuildRecord[];
}
