/** Human formatting of durations and of the verdict against the baseline. */

export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const totalSeconds = Math.round(ms / 1000);
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  if (hours > 0) return `${hours}h${String(minutes).padStart(2, '0')}m`;
  return `${minutes}m${String(seconds).padStart(2, '0')}s`;
}

export interface BaselineVerdict {
  readonly totalMs: number;
  readonly baselineMinutes: number;
  /** baseline / total: above 1 means faster than the baseline */
  readonly speedup: number;
  /** baseline - total, in minutes; negative when slower */
  readonly savedMinutes: number;
}

export function compareWithBaseline(totalMs: number, baselineMinutes: number): BaselineVerdict {
  const totalMinutes = totalMs / 60_000;
  return {
    totalMs,
    baselineMinutes,
    speedup: totalMs > 0 ? baselineMinutes / totalMinutes : Number.POSITIVE_INFINITY,
    savedMinutes: baselineMinutes - totalMinutes,
  };
}

export function formatVerdict(v: BaselineVerdict): string {
  const total = `total ${formatDuration(v.totalMs)}`;
  if (v.speedup >= 1) {
    return `${total} — ${v.speedup.toFixed(1)}× faster than the ${v.baselineMinutes} min baseline, ${Math.round(v.savedMinutes)} min saved`;
  }
  return `${total} — ${(1 / v.speedup).toFixed(1)}× slower than the ${v.baselineMinutes} min baseline, ${Math.round(-v.savedMinutes)} min lost`;
}
