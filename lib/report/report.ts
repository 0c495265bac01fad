/** The run report: built from the recorder, printed as a table, stored as JSON. */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommandLogEntry } from '../exec/types.ts';
import type { BuildRecord } from '../nix/build-log.ts';
import { STAGES, type StageName } from '../plan.ts';
import { type BaselineVerdict, compareWithBaseline, formatDuration, formatVerdict } from './format.ts';
import { type HostState, type Outcome, type RunRecorder, spanDuration } from './timing.ts';

export type RunOutcome = 'success' | 'failed' | 'interrupted';

export interface RunReport {
  readonly id: string;
  readonly outcome: RunOutcome;
  readonly goal: string;
  readonly seed: string;
  readonly flake: string;
  readonly startedAt: string;
  readonly totalMs: number;
  readonly verdict: BaselineVerdict;
  /** startMs: offset from the run's start, for timelines */
  readonly stages: readonly { name: StageName; outcome: Outcome | 'not-started'; startMs?: number | undefined; durationMs?: number | undefined }[];
  readonly hosts: readonly {
    name: string;
    state: HostState;
    startMs?: number | undefined;
    durationMs?: number | undefined;
    toplevel?: string | undefined;
  }[];
  readonly builds: readonly BuildRecord[];
  readonly commands: readonly CommandLogEntry[];
  readonly error?: string | undefined;
}

export interface ReportInput {
  readonly recorder: RunRecorder;
  readonly outcome: RunOutcome;
  readonly goal: string;
  readonly seed: string;
  readonly flake: string;
  readonly hosts: readonly string[];
  readonly baselineMinutes: number;
  readonly toplevels?: Readonly<Record<string, string>> | undefined;
  readonly builds: readonly BuildRecord[];
  readonly commands: readonly CommandLogEntry[];
  readonly error?: string | undefined;
}

export function buildReport(input: ReportInput): RunReport {
  const { recorder } = input;
  const totalMs = recorder.elapsed();
  const startedAt = new Date(recorder.startedAt).toISOString();
  const offset = (span: { startedAt: number } | undefined) => (span ? span.startedAt - recorder.startedAt : undefined);
  return {
    id: startedAt.replace(/[:.]/g, '-'),
    outcome: input.outcome,
    goal: input.goal,
    seed: input.seed,
    flake: input.flake,
    startedAt,
    totalMs,
    verdict: compareWithBaseline(totalMs, input.baselineMinutes),
    stages: STAGES.filter((name) => name !== 'report').map((name) => {
      const span = recorder.stages.get(name);
      return { name, outcome: span?.outcome ?? 'not-started', startMs: offset(span), durationMs: spanDuration(span) };
    }),
    hosts: input.hosts.map((name) => {
      const span = recorder.hosts.get(name);
      return { name, state: span?.state ?? 'not-started', startMs: offset(span), durationMs: spanDuration(span), toplevel: input.toplevels?.[name] };
    }),
    builds: input.builds,
    commands: input.commands,
    error: input.error,
  };
}

export function renderReport(report: RunReport): string {
  const rows: [string, string, string][] = [
    ...report.stages.map((s): [string, string, string] => [s.name, s.durationMs === undefined ? '—' : formatDuration(s.durationMs), s.outcome]),
    ...report.hosts.map((h): [string, string, string] => [`  ${h.name}`, h.durationMs === undefined ? '—' : formatDuration(h.durationMs), h.state]),
  ];
  const width = Math.max(...rows.map(([name]) => name.length), 'stage / host'.length);
  const line = ([a, b, c]: [string, string, string]) => `${a.padEnd(width)}  ${b.padStart(8)}  ${c}`;
  // A run that did not finish deployed nothing comparable with the baseline.
  const verdict = report.outcome === 'success' ? formatVerdict(report.verdict) : `total ${formatDuration(report.totalMs)} — ${report.outcome}, not compared with the baseline`;
  return [line(['stage / host', 'duration', 'outcome']), ...rows.map(line), '', verdict].join('\n');
}

/** Written to a temporary name first, so a crash never leaves half a report. */
export async function writeReport(dir: string, report: RunReport): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${report.id}.json`);
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(report, null, 2)}\n`);
  await rename(temporary, path);
  return path;
}
