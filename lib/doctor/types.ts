/** What a doctor check is and what it reports. */
import type { Executor } from '../exec/types.ts';
import type { Inventory } from '../inventory/schema.ts';
import type { Here } from '../remote/fleet.ts';
import type { Probes } from './probes.ts';

/** skip: not checked because something it needs failed (reported by another check). */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface CheckOutcome {
  readonly status: CheckStatus;
  /** what was found, in one line */
  readonly summary: string;
  /** the commands and requests made, as a person would type them */
  readonly tried: readonly string[];
  /** supporting lines: output tails, dangling roots, … */
  readonly details?: readonly string[];
  /** the fleet document's troubleshooting that matches (on warn and fail) */
  readonly hints?: readonly string[];
}

export interface CheckResult extends Required<CheckOutcome> {
  readonly id: string;
  readonly title: string;
}

export interface DoctorContext {
  readonly inventory: Inventory;
  readonly executor: Executor;
  /** whether this process runs on the coordinator (the cache host) */
  readonly onCoordinator: boolean;
  /** the selected host that is this machine (checked here, without ssh, as the deploy reaches it) */
  readonly here?: Here | undefined;
  /** the clock for root ages */
  readonly now: number;
  readonly signal?: AbortSignal | undefined;
  /** commands and requests several checks need, each made once */
  readonly probes: Probes;
}

/** A check as a small factory's product, in the style of np's task lists. */
export interface Check {
  readonly id: string;
  readonly title: string;
  run(ctx: DoctorContext): Promise<CheckOutcome>;
}
