/** Records when each stage and host started and ended; the report's raw data. */
import type { HostClosureDiff } from '../nix/closure-diff.ts';
import type { StageName } from '../plan/types.ts';

// The vocabulary as values too: the run report's schema (report.ts) is made from these lists.

export const OUTCOMES = ['success', 'failed', 'skipped', 'interrupted'] as const;
export type Outcome = (typeof OUTCOMES)[number];
/** `built`: a --goal build run built, pinned and served the host's toplevel, and touched nothing on the host. */
export const HOST_STATES = ['deployed', 'failed', 'rolled-back', 'not-started', 'interrupted', 'built'] as const;
export type HostState = (typeof HOST_STATES)[number];
/** Which generation the host ends on: every host must end on its previous or its new one. */
export const HOST_GENERATIONS = ['new', 'previous', 'unknown'] as const;
export type HostGeneration = (typeof HOST_GENERATIONS)[number];
/**
 * What a deployed host's goal did there: `switched` (runs the new generation,
 * which is also its boot default), `boot-default` (boots it next, runs the
 * old one until then), `activated` (`test`: runs it until the next reboot,
 * boot default unchanged), `checked` (`dry-activate`: nothing changed),
 * `unchanged` (it already ran this toplevel and its profile was it), or
 * `rebooted` (`boot --reboot`: booted into the new generation, checked).
 */
export const HOST_EFFECTS = ['switched', 'boot-default', 'activated', 'checked', 'unchanged', 'rebooted'] as const;
export type HostEffect = (typeof HOST_EFFECTS)[number];

const GOAL_EFFECTS: Readonly<Record<string, HostEffect>> = { switch: 'switched', boot: 'boot-default', test: 'activated', 'dry-activate': 'checked' };

/** What a goal does on a host that did not run its toplevel already; undefined for a goal this does not know. */
export function goalEffect(goal: string): HostEffect | undefined {
  return Object.hasOwn(GOAL_EFFECTS, goal) ? GOAL_EFFECTS[goal] : undefined;
}

export interface HostEnd {
  readonly state: HostState;
  readonly generation: HostGeneration;
  /** for a deployed host: what its goal did there */
  readonly effect?: HostEffect | undefined;
  /** the host had no system profile before this run: its "previous generation" is none */
  readonly firstDeploy?: boolean | undefined;
  /** what it ran before this run, and its profile's generation number then */
  readonly previousToplevel?: string | undefined;
  readonly previousGeneration?: number | undefined;
  /** what its new toplevel changes against what it ran, found before activation */
  readonly diff?: HostClosureDiff | undefined;
  /** what the operator needs to know, e.g. "rolled back: health check failed" */
  readonly note?: string | undefined;
}

export interface Span {
  readonly startedAt: number;
  endedAt?: number;
  outcome?: Outcome;
}

/** One Nix system's seed build on the run's time axis. */
export interface BuildSpan extends Span {
  /** on that system's builders, or natively on the coordinator */
  readonly on: 'builders' | 'here';
  /** the builder Nix was pointed at first (or the coordinator) */
  readonly seed: string;
  readonly hosts: readonly string[];
  /** derivations Nix built (0: everything was there already) */
  derivations?: number;
}

export class RunRecorder {
  readonly stages = new Map<StageName, Span>();
  /** the seed builds, by Nix system */
  readonly builds = new Map<string, BuildSpan>();
  readonly hosts = new Map<string, Span & Partial<Omit<HostEnd, 'state'>> & { state: HostState }>();
  readonly startedAt: number;

  constructor(private readonly now: () => number = Date.now) {
    this.startedAt = now();
  }

  startStage(name: StageName): void {
    this.stages.set(name, { startedAt: this.now() });
  }

  endStage(name: StageName, outcome: Outcome): void {
    const span = this.stages.get(name);
    if (span && span.endedAt === undefined) Object.assign(span, { endedAt: this.now(), outcome });
  }

  /** Ends every stage still open, e.g. when the run was interrupted. */
  closeOpenStages(outcome: Outcome): void {
    for (const [name, span] of this.stages) if (span.endedAt === undefined) this.endStage(name, outcome);
  }

  /** Whether the build of `system` has started. */
  hasBuild(system: string): boolean {
    return this.builds.has(system);
  }

  startBuild(system: string, what: Pick<BuildSpan, 'on' | 'seed' | 'hosts'>): void {
    this.builds.set(system, { startedAt: this.now(), ...what });
  }

  endBuild(system: string, outcome: Outcome, derivations: number): void {
    const span = this.builds.get(system);
    if (span && span.endedAt === undefined) Object.assign(span, { endedAt: this.now(), outcome, derivations });
  }

  startHost(name: string): void {
    this.hosts.set(name, { startedAt: this.now(), state: 'not-started' });
  }

  endHost(name: string, end: HostEnd): void {
    const span = this.hosts.get(name);
    if (span) Object.assign(span, { endedAt: this.now(), ...end, outcome: end.state === 'deployed' ? 'success' : 'failed' });
  }

  /** A host's closure diff, whenever it comes: before its end or, running beside the host's steps, after it. */
  noteHostDiff(name: string, diff: NonNullable<HostEnd['diff']>): void {
    const span = this.hosts.get(name);
    if (span) Object.assign(span, { diff });
  }

  elapsed(): number {
    return this.now() - this.startedAt;
  }
}

export function spanDuration(span: Span | undefined): number | undefined {
  return span?.endedAt === undefined ? undefined : span.endedAt - span.startedAt;
}
