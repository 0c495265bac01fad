/**
 * A stage's listr title while it runs: the stage's own title, then the
 * elapsed time and, when earlier runs tell, the ETA —
 * `seed build on opi03 · 12s · ETA ~28s`; when it ends, `… · 40.2s`.
 */
import { formatDuration, formatElapsed, formatUsual } from './format.ts';

export function progressSuffix(elapsedMs: number, etaMs?: number): string {
  const elapsed = formatElapsed(elapsedMs);
  if (etaMs === undefined) return elapsed;
  const remainingMs = etaMs - elapsedMs;
  // Rounded up: "ETA ~0s" while still running would be a promise already broken.
  return remainingMs > 0 ? `${elapsed} · ETA ~${formatElapsed(Math.ceil(remainingMs / 1000) * 1000)}` : `${elapsed} · usually ~${formatUsual(etaMs)}`;
}

export interface ProgressOptions {
  /** the usual duration of this stage (median of recent runs) */
  readonly etaMs?: number | undefined;
  readonly now?: () => number;
  readonly intervalMs?: number;
}

export interface ProgressTitle<T> {
  /** hand this to the stage instead of the task: its title writes set the base title */
  readonly task: T;
  /** stops the ticker and leaves the final duration in the title */
  stop(): void;
}

export function withProgressTitle<T extends object>(task: T, options: ProgressOptions = {}): ProgressTitle<T> {
  const { etaMs, now = Date.now, intervalMs = 1000 } = options;
  const target = task as T & { title: unknown };
  const startedAt = now();
  let base = String(target.title ?? '');
  const show = (suffix: string) => {
    target.title = base ? `${base} · ${suffix}` : suffix;
  };
  const tick = () => show(progressSuffix(now() - startedAt, etaMs));

  // The stage keeps writing (and reading) its own title; the ticker only
  // appends to it, so neither clobbers the other.
  const proxy = new Proxy(target, {
    get(object, property) {
      if (property === 'title') return base;
      const value: unknown = Reflect.get(object, property, object);
      return typeof value === 'function' ? value.bind(object) : value;
    },
    set(object, property, value) {
      if (property !== 'title') return Reflect.set(object, property, value, object);
      if (typeof value === 'string') base = value;
      else {
        object.title = value; // let the task format it (listr2 accepts [format, …args])
        base = String(object.title);
      }
      tick();
      return true;
    },
  });

  tick();
  const timer = setInterval(tick, Math.max(1000, intervalMs));
  // A ticker must never keep the process alive on its own.
  timer.unref();
  let stopped = false;
  return {
    task: proxy,
    stop: () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      show(formatDuration(now() - startedAt));
    },
  };
}
