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

/** Whole seconds counted like a clock, for titles that tick once a second: `7s`, `1m05s`. */
export function formatElapsed(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  return seconds < 60 ? `${seconds}s` : formatDuration(seconds * 1000);
}

/** How a total compares with another: `12% faster than …`, `about as fast as …`. */
export function formatRelative(totalMs: number, otherMs: number, other: string): string {
  const percent = otherMs > 0 ? Math.round(((otherMs - totalMs) / otherMs) * 100) : 0;
  const reference = `${other} (${formatDuration(otherMs)})`;
  if (percent === 0) return `about as fast as ${reference}`;
  return percent > 0 ? `${percent}% faster than ${reference}` : `${-percent}% slower than ${reference}`;
}
