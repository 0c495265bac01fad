import { describe, expect, it } from 'vitest';
import { axisTicks, formatTick, renderTimeline, timelineRows } from '../../lib/report/render/timeline.ts';
import { sampleReport } from '../helpers/sample-report.ts';

describe('timeline', () => {
  it('draws stages and hosts on one axis within 80 columns, hosts in the order they started', () => {
    const lines = renderTimeline(sampleReport()).split('\n');
    expect(lines).toEqual([
      'preflight       ██                                                         2.0s',
      'evaluate         █████                                                     4.0s',
      'seed-build           ██████████████████████████████                        30.0s',
      'wait-for-cache                                    ██                       1.0s',
      'deploy                                             ██████████████████████  23.0s',
      '  opi03                                            ██████████              10.0s',
      '  opi01                                                     █████████████  13.0s',
      '  opi02                                                     ████████████   11.0s',
      '                └────────┴─────────┴────────┴─────────┴────────┴────────┴',
      '                0        10s       20s      30s       40s      50s      1m',
    ]);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(80);
  });

  it('shows each system\'s seed build under its stage when a run built two, side by side', () => {
    const report = sampleReport({
      systemBuilds: [
        { system: 'aarch64-linux', on: 'builders', seed: 'opi03', hosts: ['opi01', 'opi02', 'opi03'], outcome: 'success', derivations: 4, startMs: 6000, durationMs: 30_000 },
        { system: 'x86_64-linux', on: 'here', seed: 'hawk', hosts: ['hawk'], outcome: 'success', derivations: 2, startMs: 6000, durationMs: 12_000 },
      ],
    });
    const lines = renderTimeline(report).split('\n');
    expect(lines.slice(2, 5)).toEqual([
      'seed-build                    █████████████████████████                    30.0s',
      '  aarch64-linux on opi03      █████████████████████████                    30.0s',
      '  x86_64-linux on hawk        ███████████                                  12.0s',
    ]);
    // One system: its build is the stage's bar, not repeated.
    expect(renderTimeline(sampleReport({ systemBuilds: [report.systemBuilds![0]!] }))).not.toContain('aarch64-linux on');
  });

  it('marks failed and interrupted bars, and rows that never ran', () => {
    const base = sampleReport();
    const report = sampleReport({
      outcome: 'interrupted',
      totalMs: 50_000,
      stages: [...base.stages.slice(0, 4), { name: 'deploy', outcome: 'interrupted', startMs: 37_000, durationMs: 13_000 }],
      hosts: [
        { name: 'opi01', state: 'interrupted', generation: 'unknown', startMs: 47_000, durationMs: 3000 },
        { name: 'opi02', state: 'not-started', generation: 'previous' },
        { name: 'opi03', state: 'failed', generation: 'previous', startMs: 37_000, durationMs: 10_000 },
      ],
    });
    expect(renderTimeline(report, 60).split('\n')).toEqual([
      'preflight       █                          2.0s',
      'evaluate         ██                        4.0s',
      'seed-build         ███████████████         30.0s',
      'wait-for-cache                    █        1.0s',
      'deploy                            ░░░░░░░  13.0s interrupted',
      '  opi03                           ▓▓▓▓▓▓   10.0s failed',
      '  opi01                                ░░  3.0s interrupted',
      '  opi02                                    — not-started',
      '                └──────────────┴─────────',
      '                0              30s',
    ]);
  });

  it('gives every bar at least one cell and keeps it inside the axis', () => {
    const report = sampleReport({ totalMs: 3_600_000, stages: [{ name: 'preflight', outcome: 'success', startMs: 3_599_990, durationMs: 10 }], hosts: [] });
    const [row] = renderTimeline(report).split('\n');
    expect(row).toMatch(/^preflight {2} +█ {2}0\.0s$/);
  });

  it('lists rows with their bars', () => {
    const rows = timelineRows(sampleReport());
    expect(rows.map((r) => r.label)).toEqual(['preflight', 'evaluate', 'seed-build', 'wait-for-cache', 'deploy', 'opi03', 'opi01', 'opi02']);
    expect(rows[5]).toEqual({ label: 'opi03', host: true, bar: { startMs: 37_000, durationMs: 10_000, kind: 'success' }, outcome: 'deployed' });
  });

  it('picks round ticks', () => {
    expect(axisTicks(60_000, 6)).toEqual([0, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000]);
    expect(axisTicks(9708, 7)).toEqual([0, 2000, 4000, 6000, 8000]);
    expect(axisTicks(44 * 60_000, 6)).toEqual([0, 10, 20, 30, 40].map((m) => m * 60_000));
    expect(axisTicks(900, 5)).toEqual([0, 200, 400, 600, 800]);
    expect([0, 500, 10_000, 60_000, 90_000, 7_200_000].map(formatTick)).toEqual(['0', '500ms', '10s', '1m', '1m30s', '2h']);
  });
});
