import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { progressSuffix, withProgressTitle } from '../../lib/report/progress.ts';

describe('progress suffix', () => {
  it('shows elapsed time, and the ETA while the usual duration lasts', () => {
    expect(progressSuffix(12_000)).toBe('12s');
    expect(progressSuffix(12_000, 40_000)).toBe('12s · ETA ~28s');
    expect(progressSuffix(39_500, 40_000)).toBe('39s · ETA ~1s');
    expect(progressSuffix(45_000, 40_000)).toBe('45s · usually ~40s');
    expect(progressSuffix(0, 125_000)).toBe('0s · ETA ~2m05s');
  });

  it('says a usual duration under a second as such, not "usually ~0s"', () => {
    expect(progressSuffix(950, 900)).toBe('0s · usually ~0.9s');
  });
});

describe('stage title with a ticker (fake timers)', () => {
  let now = 0;
  beforeEach(() => {
    vi.useFakeTimers();
    now = 1_000_000;
  });
  afterEach(() => vi.useRealTimers());

  /** Stands in for listr2's task wrapper: a title that counts its writes, and a method that needs its own `this`. */
  class FakeTask {
    titleWrites = 0;
    output = '';
    #title = 'seed build';
    get title(): string {
      return this.#title;
    }
    set title(value: string) {
      this.titleWrites++;
      this.#title = value;
    }
    ownThis(): string {
      return this.#title;
    }
  }

  function advance(ms: number) {
    now += ms;
    vi.advanceTimersByTime(ms);
  }

  it('appends elapsed time and ETA every second, composing with the stage\'s own titles', () => {
    const task = new FakeTask();
    const progress = withProgressTitle(task, { etaMs: 40_000, now: () => now });
    expect(task.title).toBe('seed build · 0s · ETA ~40s');
    advance(1000);
    expect(task.title).toBe('seed build · 1s · ETA ~39s');

    // The stage sets and reads its own title; the ticker keeps appending to it.
    progress.task.title = 'seed build on opi03';
    expect(progress.task.title).toBe('seed build on opi03');
    expect(task.title).toBe('seed build on opi03 · 1s · ETA ~39s');
    advance(11_000);
    expect(task.title).toBe('seed build on opi03 · 12s · ETA ~28s');

    // Everything else reaches the task itself, methods with the task as `this`.
    progress.task.output = 'building linux';
    expect(task.output).toBe('building linux');
    expect(progress.task.ownThis()).toBe('seed build on opi03 · 12s · ETA ~28s');

    progress.task.title = 'seed build on opi03: built 4 derivations';
    advance(500);
    progress.stop();
    expect(task.title).toBe('seed build on opi03: built 4 derivations · 12.5s');
    // Stopped: no more ticks.
    advance(5000);
    expect(task.title).toBe('seed build on opi03: built 4 derivations · 12.5s');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('shows only elapsed time without history, never ticking faster than once a second', () => {
    const task = new FakeTask();
    const progress = withProgressTitle(task, { now: () => now, intervalMs: 10 });
    expect(task.title).toBe('seed build · 0s');
    advance(999);
    expect(task.titleWrites).toBe(1);
    advance(1);
    expect(task.titleWrites).toBe(2);
    expect(task.title).toBe('seed build · 1s');
    progress.stop();
    expect(task.title).toBe('seed build · 1.0s');
  });
});
