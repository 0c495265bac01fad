/**
 * What a run is compared with besides the baseline: the median of recent
 * comparable runs (also the stages' ETA), or one given run.
 */
import type { HistoryEntry } from './history.ts';

/** How many recent runs the medians look at. */
export const RECENT_RUNS = 10;

export interface Comparison {
  /** names the reference in the verdict: `the median of the last 8 runs`, `run 2026-…` */
  readonly label: string;
  /** header of the table column with the reference's durations */
  readonly column: string;
  readonly totalMs: number;
  readonly stageMs: Readonly<Record<string, number>>;
  readonly hostMs: Readonly<Record<string, number>>;
}

export interface RunShape {
  /** absent: a deploy */
  readonly operation?: string | undefined;
  readonly hosts: readonly string[];
  readonly goal: string;
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * Successful runs of the same operation, hosts and goal, oldest first: a
 * one-host deploy, a dry-activate or a rollback says nothing about how long
 * deploying three hosts takes.
 * `before` (an ISO time) keeps a stored run from being compared with itself or later runs.
 */
export function comparableRuns(history: readonly HistoryEntry[], shape: RunShape, before?: string): HistoryEntry[] {
  const hosts = [...shape.hosts].sort().join(' ');
  return history.filter(
    (run) =>
      run.outcome === 'success' &&
      (run.operation ?? 'deploy') === (shape.operation ?? 'deploy') &&
      run.goal === shape.goal &&
      [...run.hosts].sort().join(' ') === hosts &&
      (before === undefined || run.startedAt < before),
  );
}

/** Medians of the last RECENT_RUNS comparable runs; undefined without any. */
export function recentMedians(history: readonly HistoryEntry[], shape: RunShape, before?: string): Comparison | undefined {
  const runs = comparableRuns(history, shape, before).slice(-RECENT_RUNS);
  const totalMs = median(runs.map((run) => run.totalMs));
  if (totalMs === undefined) return undefined;
  return {
    label: runs.length === 1 ? 'the last run' : `the median of the last ${runs.length} runs`,
    column: 'median',
    totalMs,
    stageMs: medianPerName(runs.map((run) => run.stageMs)),
    hostMs: medianPerName(runs.map((run) => run.hostMs)),
  };
}

export function comparisonWithRun(run: HistoryEntry): Comparison {
  return { label: `run ${run.id}`, column: 'other run', totalMs: run.totalMs, stageMs: run.stageMs, hostMs: run.hostMs };
}

function medianPerName(durations: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const names = new Set(durations.flatMap((d) => Object.keys(d)));
  return Object.fromEntries(
    [...names].map((name) => [name, median(durations.flatMap((d) => (d[name] === undefined ? [] : [d[name]])))!]),
  );
}
