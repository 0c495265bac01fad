/** The run report: built from the recorder, printed as a table, stored as JSON. */
import type { CommandLogEntry } from '../exec/types.ts';
import type { BuildRecord } from '../nix/build-log.ts';
import { STAGES, type StageName } from '../plan.ts';
import type { Comparison } from './compare.ts';
import { type BaselineVerdict, compareWithBaseline, formatDuration, formatRelative, formatVerdict } from './format.ts';
import { type Column, textTable } from './table.ts';
import { renderTimeline } from './timeline.ts';
import { type HostGeneration, type HostState, type Outcome, type RunRecorder, spanDuration } from './timing.ts';
import { writeJsonAtomically } from '../util/atomic-json.ts';

export type RunOutcome = 'success' | 'failed' | 'interrupted';

export interface RunReport {
  readonly id: string;
  readonly outcome: RunOutcome;
  readonly goal: string;
  readonly seed: string;
  /** why another builder than the preferred seed built */
  readonly seedFailover?: string | undefined;
  readonly flake: string;
  readonly startedAt: string;
  readonly totalMs: number;
  readonly verdict: BaselineVerdict;
  /** startMs: offset from the run's start, for timelines */
  readonly stages: readonly { name: StageName; outcome: Outcome | 'not-started'; startMs?: number | undefined; durationMs?: number | undefined }[];
  readonly hosts: readonly {
    name: string;
    state: HostState;
    generation: HostGeneration;
    note?: string | undefined;
    startMs?: number | undefined;
    durationMs?: number | undefined;
    toplevel?: string | undefined;
  }[];
  readonly builds: readonly BuildRecord[];
  readonly commands: readonly CommandLogEntry[];
  readonly error?: string | undefined;
  /** GC roots this run made on the cache host for the built toplevels */
  readonly pinnedRoots?: readonly PinnedRoot[] | undefined;
  /** what the run accepted that it normally refuses (--allow-unsigned) */
  readonly warnings?: readonly string[] | undefined;
}

export interface PinnedRoot {
  readonly storePath: string;
  readonly root: string;
  /** "local" or user@address of the cache host */
  readonly on: string;
}

export interface ReportInput {
  readonly recorder: RunRecorder;
  readonly outcome: RunOutcome;
  readonly goal: string;
  readonly seed: string;
  readonly seedFailover?: string | undefined;
  readonly flake: string;
  readonly hosts: readonly string[];
  readonly baselineMinutes: number;
  readonly toplevels?: Readonly<Record<string, string>> | undefined;
  readonly builds: readonly BuildRecord[];
  readonly commands: readonly CommandLogEntry[];
  readonly error?: string | undefined;
  readonly pinnedRoots?: readonly PinnedRoot[] | undefined;
  readonly warnings?: readonly string[] | undefined;
}

export function buildReport(input: ReportInput): RunReport {
  const { recorder } = input;
  const totalMs = recorder.elapsed();
  const startedAt = new Date(recorder.startedAt).toISOString();
  const offset = (span: { startedAt: number } | undefined) => (span ? span.startedAt - recorder.startedAt : undefined);
  return {
    id: startedAt.replace(/[:.]/g, '-'),
    outcome: input.outcome,
    goal: input.goal,
    seed: input.seed,
    seedFailover: input.seedFailover,
    flake: input.flake,
    startedAt,
    totalMs,
    verdict: compareWithBaseline(totalMs, input.baselineMinutes),
    stages: STAGES.filter((name) => name !== 'report').map((name) => {
      const span = recorder.stages.get(name);
      return { name, outcome: span?.outcome ?? 'not-started', startMs: offset(span), durationMs: spanDuration(span) };
    }),
    hosts: input.hosts.map((name) => {
      const span = recorder.hosts.get(name);
      return {
        name,
        state: span?.state ?? 'not-started',
        // A host never started is still on the generation it had.
        generation: span?.generation ?? 'previous',
        note: span?.note,
        startMs: offset(span),
        durationMs: spanDuration(span),
        toplevel: input.toplevels?.[name],
      };
    }),
    builds: input.builds,
    commands: input.commands,
    error: input.error,
    pinnedRoots: input.pinnedRoots ?? [],
    warnings: input.warnings ?? [],
  };
}

export interface ReportTable {
  readonly columns: readonly Column[];
  readonly rows: readonly string[][];
}

/** Stage / host, duration, the comparison's duration if any, outcome; hosts prefixed with `hostPrefix`. */
export function reportTable(report: RunReport, comparison?: Comparison, hostPrefix = '  '): ReportTable {
  const duration = (ms: number | undefined) => (ms === undefined ? '—' : formatDuration(ms));
  const compared = (ms: number | undefined) => (comparison ? [duration(ms)] : []);
  return {
    columns: [
      { header: 'stage / host' },
      { header: 'duration', align: 'right' },
      ...(comparison ? [{ header: comparison.column, align: 'right' as const }] : []),
      { header: 'outcome' },
    ],
    rows: [
      ...report.stages.map((s) => [s.name, duration(s.durationMs), ...compared(comparison?.stageMs[s.name]), s.outcome]),
      ...report.hosts.map((h) => [`${hostPrefix}${h.name}`, duration(h.durationMs), ...compared(comparison?.hostMs[h.name]), hostOutcome(h)]),
    ],
  };
}

/** `deployed (new generation)`; reports written before generations were recorded say only the state. */
function hostOutcome(host: RunReport['hosts'][number]): string {
  return host.generation ? `${host.state} (${host.generation} generation)` : host.state;
}

/** The baseline verdict, plus how the run compares with recent runs (or another run). */
export function renderVerdict(report: RunReport, comparison?: Comparison): string {
  // A run that did not finish deployed nothing comparable with the baseline.
  if (report.outcome !== 'success') return `total ${formatDuration(report.totalMs)} — ${report.outcome}, not compared with the baseline`;
  const verdict = formatVerdict(report.verdict);
  return comparison ? `${verdict}; ${formatRelative(report.totalMs, comparison.totalMs, comparison.label)}` : verdict;
}

export interface RenderOptions {
  readonly comparison?: Comparison | undefined;
  /** columns the timeline fits in */
  readonly width?: number | undefined;
}

/** The table, the timeline and the verdict: what a terminal shows after a run. */
export function renderReport(report: RunReport, options: RenderOptions = {}): string {
  const table = reportTable(report, options.comparison);
  return [...textTable(table.columns, table.rows), '', renderTimeline(report, options.width), '', renderVerdict(report, options.comparison)].join('\n');
}

/** Written to a temporary name first, so a crash never leaves half a report. */
export function writeReport(dir: string, report: RunReport): Promise<string> {
  return writeJsonAtomically(dir, report.id, report);
}
