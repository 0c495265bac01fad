/** A small synthetic run for the report renderers: one minute, three hosts, all deployed. */
import { compareWithBaseline, type RunReport } from '../../lib/report/report.ts';

export function sampleReport(overrides: Partial<RunReport> = {}): RunReport {
  const startedAt = overrides.startedAt ?? '2026-01-02T03:04:05.000Z';
  const totalMs = overrides.totalMs ?? 60_000;
  return {
    id: startedAt.replace(/[:.]/g, '-'),
    outcome: 'success',
    goal: 'switch',
    seed: 'opi03',
    flake: '.',
    startedAt,
    totalMs,
    verdict: compareWithBaseline(totalMs, 120),
    stages: [
      { name: 'preflight', outcome: 'success', startMs: 0, durationMs: 2000 },
      { name: 'evaluate', outcome: 'success', startMs: 2000, durationMs: 4000 },
      { name: 'seed-build', outcome: 'success', startMs: 6000, durationMs: 30_000 },
      { name: 'wait-for-cache', outcome: 'success', startMs: 36_000, durationMs: 1000 },
      { name: 'deploy', outcome: 'success', startMs: 37_000, durationMs: 23_000 },
    ],
    hosts: [
      { name: 'opi01', state: 'deployed', generation: 'new', startMs: 47_000, durationMs: 13_000 },
      { name: 'opi02', state: 'deployed', generation: 'new', startMs: 47_000, durationMs: 11_000 },
      { name: 'opi03', state: 'deployed', generation: 'new', startMs: 37_000, durationMs: 10_000 },
    ],
    builds: [{ drvPath: '/nix/store/vv8yjil9rfc1l65naywzx34q57jbyvhz-linux-6.1-opi.drv', machine: 'ssh://nix-builder@opi03.internal', startMs: 6_500, durationMs: 28_000 }],
    commands: [{ argv: ['nix', 'build', '--max-jobs', '0', '<toplevels>'], exitCode: 0, startedAt: Date.parse(startedAt) + 6000, durationMs: 30_000 }],
    ...overrides,
  };
}
