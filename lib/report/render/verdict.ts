/** The verdict line: a run against the baseline and against recent runs (or another run). */
import type { Comparison } from '../compare.ts';
import type { BaselineVerdict, RunReport } from '../report.ts';
import { formatDuration } from '../format.ts';

/**
 * `total 43m12s — 2.8× faster than the 120 min baseline, 77 min saved` (or
 * slower, min lost). A baseline of fractional minutes (the lab's, scaled to
 * its seconds) and what was saved are said as durations: `1.5× faster than
 * the 24.0s baseline, 8.1s saved`, not `0.4 min` and `0 min saved`.
 */
export function formatVerdict(v: BaselineVerdict): string {
  const total = `total ${formatDuration(v.totalMs)}`;
  const wholeMinutes = Number.isInteger(v.baselineMinutes) && v.baselineMinutes >= 1;
  const amount = (minutes: number) => (wholeMinutes ? `${Math.round(minutes)} min` : formatDuration(minutes * 60_000));
  const baseline = `the ${amount(v.baselineMinutes)} baseline`;
  if (v.speedup >= 1) return `${total} — ${v.speedup.toFixed(1)}× faster than ${baseline}, ${amount(v.savedMinutes)} saved`;
  return `${total} — ${(1 / v.speedup).toFixed(1)}× slower than ${baseline}, ${amount(-v.savedMinutes)} lost`;
}

/** How a total compares with another: `12% faster than …`, `about as fast as …`. */
export function formatRelative(totalMs: number, otherMs: number, other: string): string {
  const percent = otherMs > 0 ? Math.round(((otherMs - totalMs) / otherMs) * 100) : 0;
  const reference = `${other} (${formatDuration(otherMs)})`;
  if (percent === 0) return `about as fast as ${reference}`;
  return percent > 0 ? `${percent}% faster than ${reference}` : `${-percent}% slower than ${reference}`;
}

/** What the run did, to whom: `switch of opi01, opi02 (seed opi03)`, `switch of … (seeds opi03, hawk)`, `rollback (switch) of opi01`. */
export function runSubject(report: RunReport): string {
  const hosts = report.hosts.map((h) => h.name).join(', ');
  if (report.operation === 'rollback') return `rollback (${report.goal}) of ${hosts}`;
  const seeds = (report.systemBuilds?.length ?? 0) > 1 ? `seeds ${report.systemBuilds!.map((b) => b.seed).join(', ')}` : `seed ${report.seed ?? '?'}`;
  return `${report.goal} of ${hosts} (${seeds})`;
}

/** The baseline verdict, plus how the run compares with recent runs (or another run). */
export function renderVerdict(report: RunReport, comparison?: Comparison): string {
  // A run that did not finish deployed nothing comparable with the baseline.
  if (report.outcome !== 'success') return `total ${formatDuration(report.totalMs)} — ${report.outcome}${report.verdict ? ', not compared with the baseline' : ''}`;
  // A rollback builds nothing, a build deploys nothing: no baseline to compare with.
  const verdict = report.verdict ? formatVerdict(report.verdict) : `total ${formatDuration(report.totalMs)}${report.goal === 'build' ? ' — built, pinned and served; nothing deployed' : ''}`;
  return comparison ? `${verdict}; ${formatRelative(report.totalMs, comparison.totalMs, comparison.label)}` : verdict;
}
