/** Durations as people read them, for every rendering of runs and the stages' titles. */

/** `0.4s`, `12.3s`, `1m05s`, `2h03m`. */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const totalSeconds = Math.round(ms / 1000);
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  if (hours > 0) return `${hours}h${String(minutes).padStart(2, '0')}m`;
  return `${minutes}m${String(seconds).padStart(2, '0')}s`;
}

/** Whole seconds counted like a clock, for titles that tick once a second: `7s`, `1m05s`. */
export function formatElapsed(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  return seconds < 60 ? `${seconds}s` : formatDuration(seconds * 1000);
}

/**
 * A usual (median) duration shown next to a ticking clock, after `~`: whole
 * seconds as the clock counts them (`40s`, `1m05s`), but a median under a
 * second in tenths (`0.9s`, at least `0.1s`), where whole seconds would say
 * `0s` of a stage that does take time.
 */
export function formatUsual(ms: number): string {
  if (ms >= 1000) return formatElapsed(ms);
  return `${Math.max(0.1, Math.round(ms / 100) / 10).toFixed(1)}s`;
}
