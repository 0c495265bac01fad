/**
 * The run history: one summary line per run in `history.jsonl`, next to the
 * runs directory. Append-only, so no run can ever be lost by rewriting it.
 */
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { formatPath } from '../inventory/load.ts';
import { OPERATIONS } from '../plan/types.ts';
import { type RunReport, runOutcomeSchema } from './report.ts';

export const historyEntrySchema = z.object({
  id: z.string(),
  startedAt: z.string(),
  outcome: runOutcomeSchema,
  /** absent in lines written before rollbacks: a deploy */
  operation: z.enum(OPERATIONS).optional(),
  goal: z.string(),
  /** a deploy's seed; absent for a rollback */
  seed: z.string().optional(),
  hosts: z.array(z.string()),
  totalMs: z.number(),
  /** durations of the stages and hosts that ended, whatever their outcome */
  stageMs: z.record(z.string(), z.number()),
  hostMs: z.record(z.string(), z.number()),
  /** a deploy's verdict against the baseline; absent for a rollback */
  verdict: z.object({ baselineMinutes: z.number(), speedup: z.number().nullable(), savedMinutes: z.number() }).optional(),
});
export type HistoryEntry = z.infer<typeof historyEntrySchema>;

/** `.deploy/runs` → `.deploy/history.jsonl` */
export function historyPathFor(reportDir: string): string {
  return join(dirname(reportDir), 'history.jsonl');
}

export function summarizeRun(report: RunReport): HistoryEntry {
  const durations = (items: readonly { name: string; durationMs?: number | undefined }[]) =>
    Object.fromEntries(items.flatMap((item) => (item.durationMs === undefined ? [] : [[item.name, item.durationMs]])));
  const verdict = report.verdict;
  return {
    id: report.id,
    startedAt: report.startedAt,
    outcome: report.outcome,
    operation: report.operation ?? 'deploy',
    goal: report.goal,
    ...(report.seed === undefined ? {} : { seed: report.seed }),
    hosts: report.hosts.map((h) => h.name),
    totalMs: report.totalMs,
    stageMs: durations(report.stages),
    hostMs: durations(report.hosts),
    // speedup is infinite for a 0 ms run, which JSON cannot hold
    ...(verdict
      ? { verdict: { baselineMinutes: verdict.baselineMinutes, speedup: Number.isFinite(verdict.speedup) ? round(verdict.speedup, 2) : null, savedMinutes: round(verdict.savedMinutes, 1) } }
      : {}),
  };
}

const NEWLINE = 0x0a;

export async function appendHistory(path: string, entry: HistoryEntry): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const file = await open(path, 'a+');
  try {
    // A line cut short by a crash must not swallow this one: start a fresh line after it.
    const { size } = await file.stat();
    const last = size > 0 ? (await file.read(Buffer.alloc(1), 0, 1, size - 1)).buffer[0] : NEWLINE;
    const line = Buffer.from(`${last === NEWLINE ? '' : '\n'}${JSON.stringify(entry)}\n`);
    // One write(2) on an O_APPEND file: concurrent runs append whole lines, never interleaved.
    const { bytesWritten } = await file.write(line);
    if (bytesWritten !== line.length) throw new Error(`${path}: short write (${bytesWritten} of ${line.length} bytes)`);
  } finally {
    await file.close();
  }
}

/** Oldest first. A missing file is an empty history; an unreadable file or line is skipped with a warning. */
export async function readHistory(path: string, warn: (message: string) => void): Promise<HistoryEntry[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') warn(`cannot read ${path} (${code ?? String(error)}); going on without the run history`);
    return [];
  }
  return parseHistory(text, path, warn);
}

export function parseHistory(text: string, source: string, warn: (message: string) => void): HistoryEntry[] {
  const entries: HistoryEntry[] = [];
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    const problem = (reason: string) => warn(`${source}:${index + 1}: skipped a corrupt line (${reason})`);
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (error) {
      problem((error as Error).message);
      return;
    }
    const parsed = historyEntrySchema.safeParse(json);
    if (parsed.success) entries.push(parsed.data);
    else problem(parsed.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`).join('; '));
  });
  return entries;
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
