/** The verdict line: a run against the baseline and against recent runs (or another run). */
import type { Comparison } from '../compare.ts';
import type { BaselineVerdict, RunReport } from '../report.ts';
import { formatDuration } from '../format.ts';

/** `total 43m12s — 2.8× faster than the 120 min baseline, 77 min saved` (or slower, min lost). */
export function formatVerdict(v: BaselineVerdict): string {
  const total = `total ${formatDuration(v.totalMs)}`;
  if (v.speedup >= 1) {
    return `${total} — ${v.speedup.toFixed(1)}× faster than the ${v.baselineMinutes} min baseline, ${Math.round(v.savedMinutes)} min saved`;
  }
  return `${total} — ${(1 / v.speedup).toFixed(1)}× slower than the ${v.baselineMinutes} min baseline, ${Math.round(-v.savedMinutes)} min lost`;
}

/** How a total compares with another: `12% faster than …`, `about as fast as …`. */
export function formatRelative(totalMs: number, otherMs: number, other: string): string {
  const percent = otherMs > 0 ? Math.round(((otherMs - totalMs) / otherMs) * 100) : 0;
  const reference = `${other} (${formatDuration(otherMs)})`;
  if (percent === 0) return `about as fast as ${reference}`;
  return percent > 0 ? `${percent}% faster than ${reference}` : `${-percent}% slower than ${reference}`;
}

/** The baseline verdict, plus how the run compares with recent runs (or another run). */
export function renderVerdict(report: RunReport, comparison?: Comparison): string {
  // A run that did not finish deployed nothing comparable with the baseline.
  if (report.outcome !== 'success') return `total ${formatDuration(report.totalMs)} — ${report.outcome}, not compared with the baseline`;
  const verdict = formatVerdict(report.verdict);
  return comparison ? `${verdict}; ${formatRelative(report.totalMs, comparison.totalMs, comparison.label)}` : verdict;
}
