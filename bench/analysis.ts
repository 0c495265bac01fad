/**
 * Pure arithmetic over timings: interval unions (the critical path of a
 * command log), idle gaps, medians, and the shape of deploy-all's JSON report
 * as far as the benchmark reads it. No I/O here.
 */
import type { CommandLogEntry } from '../lib/exec/types.ts';
import type { RunReport } from '../lib/report/report.ts';
import { concurrencyFor } from '../lib/plan/concurrency.ts';

export interface Interval {
  readonly start: number;
  readonly end: number;
}

/** Sorted, non-overlapping intervals covering exactly what the inputs cover. */
export function unionIntervals(intervals: readonly Interval[]): Interval[] {
  const sorted = intervals.filter((i) => i.end > i.start).sort((a, b) => a.start - b.start || a.end - b.end);
  const merged: Interval[] = [];
  for (const next of sorted) {
    const last = merged[merged.length - 1];
    if (last && next.start <= last.end) merged[merged.length - 1] = { start: last.start, end: Math.max(last.end, next.end) };
    else merged.push({ start: next.start, end: next.end });
  }
  return merged;
}

export function totalLength(intervals: readonly Interval[]): number {
  return intervals.reduce((sum, i) => sum + (i.end - i.start), 0);
}

/** The parts of `intervals` inside `window`. */
export function clip(intervals: readonly Interval[], window: Interval): Interval[] {
  return intervals
    .map((i) => ({ start: Math.max(i.start, window.start), end: Math.min(i.end, window.end) }))
    .filter((i) => i.end > i.start);
}

/** What of `window` no interval covers, in order. `busy` must be a union (sorted, disjoint). */
export function uncovered(busy: readonly Interval[], window: Interval): Interval[] {
  const gaps: Interval[] = [];
  let cursor = window.start;
  for (const i of clip(busy, window)) {
    if (i.start > cursor) gaps.push({ start: cursor, end: i.start });
    cursor = Math.max(cursor, i.end);
  }
  if (cursor < window.end) gaps.push({ start: cursor, end: window.end });
  return gaps;
}

/** How long two intervals ran at the same time (0 when they did not), in their unit. */
export function overlapLength(a: Interval, b: Interval): number {
  return totalLength(clip([a], b));
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

// --- deploy-all's report, as read by the benchmark ---------------------------

/** The parts of a run report (lib/report/report.ts, the one place that knows its shape) the benchmark reads. */
export type DeployReport = Pick<RunReport, 'id' | 'outcome' | 'seed' | 'systemBuilds' | 'startedAt' | 'totalMs' | 'stages' | 'hosts' | 'commands'>;
export type ReportSpan = DeployReport['stages'][number] | DeployReport['hosts'][number];

/** Checks the fields the benchmark relies on, so a changed report shape fails loudly, not with NaN. */
export function asDeployReport(value: unknown): DeployReport {
  const r = value as Partial<DeployReport> | null;
  const problems: string[] = [];
  if (!r || typeof r !== 'object') throw new Error('deploy-all printed no report object');
  if (typeof r.startedAt !== 'string' || Number.isNaN(Date.parse(r.startedAt))) problems.push('startedAt');
  if (typeof r.totalMs !== 'number') problems.push('totalMs');
  if (!Array.isArray(r.stages) || r.stages.some((s) => typeof s?.name !== 'string')) problems.push('stages[].name');
  if (!Array.isArray(r.hosts) || r.hosts.some((h) => typeof h?.name !== 'string')) problems.push('hosts[].name');
  if (r.systemBuilds !== undefined && (!Array.isArray(r.systemBuilds) || r.systemBuilds.some((b) => typeof b?.system !== 'string' || typeof b.seed !== 'string'))) {
    problems.push('systemBuilds[].{system,seed}');
  }
  if (
    !Array.isArray(r.commands) ||
    r.commands.some((c) => !Array.isArray(c?.argv) || typeof c.startedAt !== 'number' || typeof c.durationMs !== 'number')
  ) {
    problems.push('commands[].{argv,startedAt,durationMs}');
  }
  if (problems.length) throw new Error(`deploy-all's report lacks what the benchmark reads: ${problems.join(', ')}`);
  return r as DeployReport;
}

/** Splits a remote command line as lib/util/shell.ts quotes it: bare words and '…' (with '\'' for a quote). */
export function splitQuoted(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === ' ') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      word = (word ?? '') + line.slice(i + 1, end < 0 ? line.length : end);
      i = end < 0 ? line.length : end;
    } else if (c === '\\' && i + 1 < line.length) {
      word = (word ?? '') + line[++i];
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

const storeName = (word: string) => word.replace(/^\/nix\/store\/[0-9a-z]{32}-[^/]*/, '…');

/** A short human name for a command line: program, host and what it does. */
export function commandLabel(argv: readonly string[]): string {
  const program = (argv[0] ?? '?').replace(/^.*\//, '');
  if (program === 'ssh') {
    // ssh [options] user@host -- remote command
    const dash = argv.indexOf('--');
    const destination = dash > 0 ? argv[dash - 1] : argv.find((a, i) => i > 0 && /@/.test(a) && !argv[i - 1]?.startsWith('-'));
    const words = splitQuoted(dash > 0 ? argv.slice(dash + 1).join(' ') : '');
    // sudo -n -- COMMAND (as root: lib/remote/host.ts asRoot) is named by its command, as the direct method's steps differ only there.
    const remote = words[0] === 'sudo' && words.includes('--') ? words.slice(words.indexOf('--') + 1) : words;
    // sh -c SCRIPT NAME …: the script's $0 names it
    const what = remote[0] === 'sh' && remote[1] === '-c' && remote[3] ? `sh -c … ${remote[3]}` : remote.slice(0, 2).map(storeName).join(' ');
    return `ssh ${destination ?? '?'} ${what}`.trim();
  }
  if (program === 'nixos-rebuild') {
    const goal = argv[1] ?? '';
    const flake = argv[argv.indexOf('--flake') + 1] ?? '';
    return `nixos-rebuild ${goal} ${flake.replace(/^.*#/, '')}`.trim();
  }
  if (program === 'nix') {
    const sub = argv.slice(1).find((a, i, rest) => !a.startsWith('-') && !(rest[i - 1] ?? '').startsWith('--log-format'));
    return `nix ${sub ?? ''}`.trim();
  }
  if (program === 'sh' && argv[1] === '-c') {
    // sh -c SCRIPT [NAME …]: its $0 if it has a name, else the script's first line
    const name = argv[3] && /^[\w.-]+$/.test(argv[3]) ? argv[3] : (argv[2] ?? '').trim().split('\n')[0]!.slice(0, 40);
    return `sh -c … ${name}`;
  }
  return [program, ...argv.slice(1, 3).map((a) => storeName(a.split('\n')[0]!).slice(0, 40))].join(' ');
}

/** A report's command log with each argv replaced by its label: what the timings need, a tenth of the size. */
export function compactCommands(commands: readonly CommandLogEntry[]): { label: string; exitCode: number | null; startedAt: number; durationMs: number }[] {
  return commands.map((c) => ({ label: commandLabel(c.argv), exitCode: c.exitCode, startedAt: c.startedAt, durationMs: c.durationMs }));
}

/** The command's kind without the host, to group the same step across hosts. */
export function commandKind(argv: readonly string[]): string {
  return commandLabel(argv)
    .replace(/\b[\w.-]+@[\w.:-]+/g, '<host>')
    .replace(/\bopi\d\d\b/g, '<host>');
}

export interface OverheadAnalysis {
  /** the deploy-all process, from spawn to exit */
  readonly wallMs: number;
  /** the orchestrator's own clock (report.totalMs) */
  readonly runMs: number;
  /** union of the intervals in which at least one logged command ran */
  readonly criticalPathMs: number;
  /** wall − criticalPath */
  readonly overheadMs: number;
  /** process start (tsx, module loading, inventory, planning) until the run's clock starts */
  readonly startupMs: number;
  /** after the run's clock stops: report writing, JSON, process exit */
  readonly shutdownMs: number;
  /** inside the run, no command running */
  readonly idleInRunMs: number;
  readonly idleByStage: Readonly<Record<string, number>>;
  /** the largest idle gaps inside the run, with what came before and after */
  readonly largestGaps: readonly { atMs: number; ms: number; stage: string; after: string; before: string }[];
  /** per command kind: how many, total and median duration */
  readonly byKind: readonly { kind: string; count: number; totalMs: number; medianMs: number; maxMs: number }[];
}

export function analyseOverhead(report: DeployReport, process: Interval): OverheadAnalysis {
  const runStart = Date.parse(report.startedAt);
  const run: Interval = { start: runStart, end: runStart + report.totalMs };
  const commands = report.commands.map((c) => ({ start: c.startedAt, end: c.startedAt + c.durationMs, argv: c.argv }));
  const busy = unionIntervals(commands);
  const criticalPathMs = totalLength(clip(busy, process));
  const idle = uncovered(busy, run);

  const stageSpans = report.stages
    .filter((s) => s.startMs !== undefined && s.durationMs !== undefined)
    .map((s) => ({ name: s.name, start: runStart + s.startMs!, end: runStart + s.startMs! + s.durationMs! }));
  const stageAt = (t: number) => stageSpans.find((s) => t >= s.start && t < s.end)?.name ?? 'between stages';
  const idleByStage: Record<string, number> = {};
  for (const gap of idle) {
    // Split each gap at stage boundaries so it is charged to the right stage.
    const cuts = [gap.start, ...stageSpans.flatMap((s) => [s.start, s.end]).filter((t) => t > gap.start && t < gap.end), gap.end].sort((a, b) => a - b);
    for (let i = 0; i + 1 < cuts.length; i++) {
      const stage = stageAt(cuts[i]!);
      idleByStage[stage] = (idleByStage[stage] ?? 0) + (cuts[i + 1]! - cuts[i]!);
    }
  }
  const lastEndedBefore = (t: number) =>
    commands.filter((c) => c.end <= t).sort((a, b) => b.end - a.end)[0];
  const firstStartedAfter = (t: number) => commands.filter((c) => c.start >= t).sort((a, b) => a.start - b.start)[0];
  const largestGaps = [...idle]
    .sort((a, b) => b.end - b.start - (a.end - a.start))
    .slice(0, 5)
    .map((gap) => {
      const after = lastEndedBefore(gap.start);
      const before = firstStartedAfter(gap.end);
      return {
        atMs: gap.start - runStart,
        ms: gap.end - gap.start,
        stage: stageAt(gap.start),
        after: after ? commandLabel(after.argv) : 'run start',
        before: before ? commandLabel(before.argv) : 'run end',
      };
    });

  const kinds = new Map<string, number[]>();
  for (const c of report.commands) {
    const kind = commandKind(c.argv);
    kinds.set(kind, [...(kinds.get(kind) ?? []), c.durationMs]);
  }
  const byKind = [...kinds]
    .map(([kind, ds]) => ({ kind, count: ds.length, totalMs: ds.reduce((a, b) => a + b, 0), medianMs: median(ds)!, maxMs: Math.max(...ds) }))
    .sort((a, b) => b.totalMs - a.totalMs);

  const wallMs = process.end - process.start;
  return {
    wallMs,
    runMs: report.totalMs,
    criticalPathMs,
    overheadMs: wallMs - criticalPathMs,
    startupMs: Math.max(0, run.start - process.start),
    shutdownMs: Math.max(0, process.end - run.end),
    idleInRunMs: totalLength(idle),
    idleByStage,
    largestGaps,
    byKind,
  };
}

export function stageDurations(report: DeployReport): Record<string, number | undefined> {
  return Object.fromEntries(report.stages.map((s) => [s.name, s.durationMs]));
}

/** Rounds of deploys deploy-all runs: every host at once (no canary wave by default), `concurrency` (default: lib/plan/concurrency.ts) at a time. */
export function expectedDeployWaves(hosts: number, concurrency: number | undefined): number {
  return Math.ceil(Math.max(1, hosts) / concurrencyFor(hosts, concurrency));
}
