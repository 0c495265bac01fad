import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatDuration, formatUsual } from '../../lib/report/format.ts';
import { renderReport } from '../../lib/report/render/text.ts';
import { formatVerdict } from '../../lib/report/render/verdict.ts';
import { buildReport, compareWithBaseline, writeReport } from '../../lib/report/report.ts';
import { RunRecorder } from '../../lib/report/timing.ts';

function clock(times: number[]) {
  return () => {
    const next = times.shift();
    if (next === undefined) throw new Error('clock read too often');
    return next;
  };
}

describe('durations and the baseline verdict', () => {
  it('formats durations', () => {
    expect(formatDuration(420)).toBe('0.4s');
    expect(formatDuration(12_340)).toBe('12.3s');
    expect(formatDuration((43 * 60 + 12) * 1000)).toBe('43m12s');
    expect(formatDuration((62 * 60 + 5) * 1000)).toBe('1h02m');
  });

  it('says a usual duration under a second in tenths, not as ~0s (the stage ETA\'s "usually ~…")', () => {
    expect(formatUsual(900)).toBe('0.9s');
    expect(formatUsual(940)).toBe('0.9s');
    expect(formatUsual(20)).toBe('0.1s');
    expect(formatUsual(40_000)).toBe('40s');
    expect(formatUsual(40_900)).toBe('40s');
    expect(formatUsual(65_000)).toBe('1m05s');
  });

  it('compares with the 120-minute baseline', () => {
    const verdict = compareWithBaseline((43 * 60 + 12) * 1000, 120);
    expect(verdict.speedup).toBeCloseTo(2.78, 2);
    expect(verdict.savedMinutes).toBeCloseTo(76.8, 1);
    expect(formatVerdict(verdict)).toBe('total 43m12s — 2.8× faster than the 120 min baseline, 77 min saved');
    expect(formatVerdict(compareWithBaseline(150 * 60_000, 120))).toBe('total 2h30m — 1.3× slower than the 120 min baseline, 30 min lost');
  });

  it('says a baseline of fractional minutes (the lab\'s, scaled to seconds) and what was saved as durations', () => {
    // The demo's lab: 3 opis × an 8 s kernel, one by one = 24 s = 0.4 min.
    expect(formatVerdict(compareWithBaseline(15_900, 0.4))).toBe('total 15.9s — 1.5× faster than the 24.0s baseline, 8.1s saved');
    // The test session's: 3 × 1 s; its fixed costs (ssh, evaluation) are real seconds.
    expect(formatVerdict(compareWithBaseline(10_000, 3 / 60))).toBe('total 10.0s — 3.3× slower than the 3.0s baseline, 7.0s lost');
    // The benchmark's: 3 × (40 + 1 + 1) s.
    expect(formatVerdict(compareWithBaseline(45_900, 2.1))).toBe('total 45.9s — 2.7× faster than the 2m06s baseline, 1m20s saved');
  });
});

describe('run report', () => {
  // start, preflight 0→1s, evaluate 1→3s, host opi03 3→10s, end at 12s
  const recorder = new RunRecorder(clock([0, 0, 1000, 1000, 3000, 3000, 10_000, 12_000]));
  recorder.startStage('preflight');
  recorder.endStage('preflight', 'success');
  recorder.startStage('evaluate');
  recorder.endStage('evaluate', 'failed');
  recorder.startHost('opi03');
  recorder.endHost('opi03', { state: 'deployed', generation: 'new', effect: 'switched' });
  const report = buildReport({
    recorder,
    outcome: 'failed',
    goal: 'switch',
    seed: 'opi03',
    flake: '.',
    hosts: ['opi01', 'opi03'],
    baselineMinutes: 120,
    builds: [],
    commands: [],
    error: 'boom',
  });

  it('holds each stage and host with its duration and outcome', () => {
    expect(report.totalMs).toBe(12_000);
    expect(report.stages.slice(0, 3)).toEqual([
      { name: 'preflight', outcome: 'success', startMs: 0, durationMs: 1000 },
      { name: 'evaluate', outcome: 'failed', startMs: 1000, durationMs: 2000 },
      { name: 'seed-build', outcome: 'not-started', startMs: undefined, durationMs: undefined },
    ]);
    expect(report.hosts).toEqual([
      { name: 'opi01', state: 'not-started', generation: 'previous', note: undefined, startMs: undefined, durationMs: undefined, toplevel: undefined },
      { name: 'opi03', state: 'deployed', generation: 'new', effect: 'switched', note: undefined, startMs: 3000, durationMs: 7000, toplevel: undefined },
    ]);
    expect(report.id).toBe('1970-01-01T00-00-00-000Z');
  });

  it('renders a table, the timeline and the verdict', () => {
    const text = renderReport(report);
    expect(text.split('\n')).toEqual([
      'stage / host    duration  outcome',
      'preflight           1.0s  success',
      'evaluate            2.0s  failed',
      'seed-build             —  not-started',
      'wait-for-cache         —  not-started',
      'deploy                 —  not-started',
      '  opi01                —  not-started (previous generation)',
      '  opi03             7.0s  switched (new generation, boot default)',
      '',
      'preflight       █████                                              1.0s',
      'evaluate            ▓▓▓▓▓▓▓▓▓                                      2.0s failed',
      'seed-build                                                         — not-started',
      'wait-for-cache                                                     — not-started',
      'deploy                                                             — not-started',
      '  opi03                     █████████████████████████████          7.0s',
      '  opi01                                                            — not-started',
      '                └───────┴───────┴───────┴───────┴───────┴───────┴',
      '                0       2s      4s      6s      8s      10s     12s',
      '',
      'total 12.0s — failed, not compared with the baseline',
    ]);
  });

  it('is written as JSON without leaving temporary files', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'runs-')), 'nested');
    const path = await writeReport(dir, report);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual(JSON.parse(JSON.stringify(report)));
    expect(await readdir(dir)).toEqual([`${report.id}.json`]);
  });
});
