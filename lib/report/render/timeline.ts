/**
 * A run on one time axis: a bar per stage and host, so overlap (hosts
 * deploying side by side) and the critical path (what everything waited
 * for) show at a glance. The rows and ticks feed both the text and the SVG
 * timeline.
 */
import type { RunReport } from '../report.ts';
import { formatDuration } from '../format.ts';

export type BarKind = 'success' | 'failed' | 'interrupted';

export interface TimelineRow {
  readonly label: string;
  readonly host: boolean;
  /** undefined when it never ran (or never ended) */
  readonly bar?: { readonly startMs: number; readonly durationMs: number; readonly kind: BarKind } | undefined;
  readonly outcome: string;
}

/** The stages in order (a run of several systems: each system's seed build under its stage), then the hosts in the order they started. */
export function timelineRows(report: RunReport): TimelineRow[] {
  const bar = (startMs: number | undefined, durationMs: number | undefined, outcome: string) =>
    startMs === undefined || durationMs === undefined ? undefined : { startMs, durationMs, kind: barKind(outcome) };
  const hosts = [...report.hosts].sort((a, b) => (a.startMs ?? Number.POSITIVE_INFINITY) - (b.startMs ?? Number.POSITIVE_INFINITY));
  return [
    ...report.stages.flatMap((s) => [
      { label: s.name, host: false, bar: bar(s.startMs, s.durationMs, s.outcome), outcome: s.outcome },
      ...(s.name === 'seed-build' && (report.systemBuilds?.length ?? 0) > 1
        ? report.systemBuilds!.map((b) => ({ label: `${b.system} on ${b.seed}`, host: true, bar: bar(b.startMs, b.durationMs, b.outcome), outcome: b.outcome }))
        : []),
    ]),
    ...hosts.map((h) => ({ label: h.name, host: true, bar: bar(h.startMs, h.durationMs, h.state), outcome: h.state })),
  ];
}

function barKind(outcome: string): BarKind {
  if (outcome === 'success' || outcome === 'deployed') return 'success';
  return outcome === 'interrupted' ? 'interrupted' : 'failed';
}

/** The axis spans the run, or the last bar if one outlasted the recorded total. */
export function timelineSpanMs(report: RunReport, rows: readonly TimelineRow[]): number {
  return Math.max(report.totalMs, ...rows.map((r) => (r.bar ? r.bar.startMs + r.bar.durationMs : 0)), 1);
}

const TICK_STEPS_MS = [
  100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000,
  7_200_000,
];

/** Round tick positions from 0, at most `maxTicks` intervals over the span. */
export function axisTicks(spanMs: number, maxTicks: number): number[] {
  const step = TICK_STEPS_MS.find((s) => spanMs / s <= maxTicks) ?? Math.ceil(spanMs / maxTicks / 3_600_000) * 3_600_000;
  const ticks: number[] = [];
  for (let t = 0; t <= spanMs; t += step) ticks.push(t);
  return ticks;
}

/** Tick labels: `0`, `500ms`, `10s`, `1m30s`, `2h`. */
export function formatTick(ms: number): string {
  if (ms === 0) return '0';
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${ms / 1000}s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  if (minutes >= 60 && minutes % 60 === 0 && seconds === 0) return `${minutes / 60}h`;
  return seconds ? `${minutes}m${String(seconds).padStart(2, '0')}s` : `${minutes}m`;
}

const BAR_CHAR: Record<BarKind, string> = { success: '█', failed: '▓', interrupted: '░' };

/**
 * Fits `width` columns: labels, the bars, then each row's duration (and
 * outcome unless it succeeded); the axis below.
 */
export function renderTimeline(report: RunReport, width = 80): string {
  const rows = timelineRows(report);
  const labels = rows.map((r) => (r.host ? `  ${r.label}` : r.label));
  const notes = rows.map((r) => {
    if (!r.bar) return `— ${r.outcome}`;
    const duration = formatDuration(r.bar.durationMs);
    return r.bar.kind === 'success' ? duration : `${duration} ${r.outcome}`;
  });
  const labelWidth = Math.max(...labels.map((l) => l.length));
  const noteWidth = Math.max(...notes.map((n) => n.length));
  const barWidth = Math.max(10, width - labelWidth - noteWidth - 4);
  const spanMs = timelineSpanMs(report, rows);
  const column = (ms: number) => (ms / spanMs) * barWidth;

  const lines = rows.map((row, i) => {
    const cells = Array.from({ length: barWidth }, () => ' ');
    if (row.bar) {
      // Every bar gets at least one cell, however short.
      const from = Math.min(Math.floor(column(row.bar.startMs)), barWidth - 1);
      const to = Math.max(from + 1, Math.min(Math.ceil(column(row.bar.startMs + row.bar.durationMs)), barWidth));
      cells.fill(BAR_CHAR[row.bar.kind], from, to);
    }
    return `${labels[i]!.padEnd(labelWidth)}  ${cells.join('')}  ${notes[i]}`.trimEnd();
  });

  const ticks = axisTicks(spanMs, Math.max(1, Math.floor(barWidth / 8)));
  const rule = Array.from({ length: barWidth }, () => '─');
  let tickLabels = '';
  for (const tick of ticks) {
    const at = Math.min(Math.floor(column(tick)), barWidth - 1);
    rule[at] = at === 0 ? '└' : '┴';
    const label = formatTick(tick);
    // A label that would run into the previous one is left out; its tick stays.
    if (at >= tickLabels.length + (tickLabels ? 1 : 0)) tickLabels = tickLabels.padEnd(at) + label;
  }
  const indent = ' '.repeat(labelWidth + 2);
  return [...lines, `${indent}${rule.join('')}`, `${indent}${tickLabels}`].join('\n');
}
