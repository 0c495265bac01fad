import { describe, expect, it } from 'vitest';
import { comparableRuns, comparisonWithRun, median, RECENT_RUNS, recentMedians } from '../../lib/report/compare.ts';
import { formatElapsed } from '../../lib/report/format.ts';
import { type HistoryEntry, summarizeRun } from '../../lib/report/history.ts';
import { formatRelative, renderVerdict } from '../../lib/report/render/verdict.ts';
import { sampleReport } from '../helpers/sample-report.ts';

const shape = { hosts: ['opi01', 'opi02', 'opi03'], goal: 'switch' };

/** The n-th run of the day (minutes after 10:00), with a total and a seed-build time. */
function run(n: number, totalMs: number, changes: Partial<HistoryEntry> = {}): HistoryEntry {
  const startedAt = `2026-01-02T10:${String(n).padStart(2, '0')}:00.000Z`;
  const entry = summarizeRun(sampleReport({ startedAt, totalMs }));
  return { ...entry, stageMs: { ...entry.stageMs, 'seed-build': totalMs / 2 }, ...changes };
}

describe('medians of recent runs', () => {
  it('computes medians', () => {
    expect(median([])).toBeUndefined();
    expect(median([5])).toBe(5);
    expect(median([9, 1, 5])).toBe(5);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('takes the last runs of the same hosts (in any order) and goal that succeeded', () => {
    const history = [
      run(1, 10_000),
      run(2, 20_000, { outcome: 'failed' }),
      run(3, 30_000, { goal: 'boot' }),
      run(4, 40_000, { hosts: ['opi03'] }),
      run(5, 50_000, { hosts: ['opi03', 'opi01', 'opi02'] }),
    ];
    expect(comparableRuns(history, shape).map((r) => r.totalMs)).toEqual([10_000, 50_000]);
    expect(comparableRuns(history, shape, '2026-01-02T10:05:00.000Z').map((r) => r.totalMs)).toEqual([10_000]);
  });

  it('gives the median of the last ten, total and per stage and host', () => {
    // Twelve runs: the two oldest (1 and 2 minutes) fall out; 3…12 minutes remain.
    const history = Array.from({ length: 12 }, (_, i) => run(i, (i + 1) * 60_000));
    expect(RECENT_RUNS).toBe(10);
    const usual = recentMedians(history, shape)!;
    expect(usual.label).toBe('the median of the last 10 runs');
    expect(usual.column).toBe('median');
    expect(usual.totalMs).toBe(7.5 * 60_000);
    expect(usual.stageMs['seed-build']).toBe(3.75 * 60_000);
    expect(usual.stageMs.preflight).toBe(2000);
    expect(usual.hostMs).toEqual({ opi01: 13_000, opi02: 11_000, opi03: 10_000 });
  });

  it('names a single earlier run, and has nothing to say without one', () => {
    expect(recentMedians([run(1, 60_000)], shape)?.label).toBe('the last run');
    expect(recentMedians([run(1, 60_000, { outcome: 'interrupted' })], shape)).toBeUndefined();
    expect(recentMedians([], shape)).toBeUndefined();
  });

  it('compares with one given run', () => {
    const other = run(1, 90_000);
    expect(comparisonWithRun(other)).toEqual({
      label: 'run 2026-01-02T10-01-00-000Z',
      column: 'other run',
      totalMs: 90_000,
      stageMs: other.stageMs,
      hostMs: other.hostMs,
    });
  });
});

describe('the verdict with a comparison', () => {
  it('says how much faster or slower', () => {
    expect(formatRelative(43 * 60_000, 49 * 60_000, 'the median of the last 8 runs')).toBe('12% faster than the median of the last 8 runs (49m00s)');
    expect(formatRelative(55_000, 50_000, 'the last run')).toBe('10% slower than the last run (50.0s)');
    expect(formatRelative(50_200, 50_000, 'the last run')).toBe('about as fast as the last run (50.0s)');
  });

  it('adds the comparison to the baseline verdict of a successful run only', () => {
    const usual = recentMedians([run(1, 80_000), run(2, 70_000)], shape);
    expect(renderVerdict(sampleReport(), usual)).toBe(
      'total 1m00s — 120.0× faster than the 120 min baseline, 119 min saved; 20% faster than the median of the last 2 runs (1m15s)',
    );
    expect(renderVerdict(sampleReport())).toBe('total 1m00s — 120.0× faster than the 120 min baseline, 119 min saved');
    expect(renderVerdict(sampleReport({ outcome: 'failed' }), usual)).toBe('total 1m00s — failed, not compared with the baseline');
  });

  it('formats elapsed time in whole seconds', () => {
    expect([0, 400, 12_600, 65_000, 3_700_000].map(formatElapsed)).toEqual(['0s', '0s', '12s', '1m05s', '1h01m']);
  });
});
