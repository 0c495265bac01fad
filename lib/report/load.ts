/** Finds and reads stored run reports (`<reportDir>/<id>.json`). */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { formatPath } from '../inventory/load.ts';
import { compareWithBaseline, type RunReport, runReportSchema } from './report.ts';

/** A run that cannot be found or read: the report script exits 2 with the message. */
export class ReportNotFoundError extends Error {
  override name = 'ReportNotFoundError';
}

// The run report's one schema, but for the verdict: JSON turns an infinite speed-up into null,
// and the verdict is derived again from its baseline anyway (loadRun).
const storedReportSchema = runReportSchema.extend({ verdict: z.object({ baselineMinutes: z.number() }).optional() });

/** Run ids in the directory, oldest first (ids are ISO times). */
export async function listRunIds(reportDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(reportDir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    throw new ReportNotFoundError(`cannot read ${reportDir}: ${code ?? String(error)}`);
  }
  return names.filter((name) => name.endsWith('.json')).map((name) => name.slice(0, -'.json'.length)).sort();
}

/** `id` may be a unique prefix (`2026-11-25T14`); `undefined` means the latest run. */
export async function loadRun(reportDir: string, id?: string): Promise<RunReport> {
  const ids = await listRunIds(reportDir);
  if (ids.length === 0) {
    const missing = await stat(reportDir).then(() => false, () => true);
    throw new ReportNotFoundError(missing ? `no run reports: ${resolve(reportDir)} does not exist` : `no run reports in ${reportDir} yet (a deploy writes one per run)`);
  }
  const resolved = id === undefined ? ids.at(-1)! : resolveId(ids, id, reportDir);
  const path = join(reportDir, `${resolved}.json`);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new ReportNotFoundError(`cannot read ${path}: ${(error as Error).message}`);
  }
  const parsed = storedReportSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ReportNotFoundError(`${path} is not a run report: ${formatPath(issue.path)}: ${issue.message}`);
  }
  const report = parsed.data;
  const { verdict, ...rest } = report;
  return verdict ? { ...rest, verdict: compareWithBaseline(report.totalMs, verdict.baselineMinutes) } : rest;
}

function resolveId(ids: readonly string[], id: string, reportDir: string): string {
  if (ids.includes(id)) return id;
  const matches = ids.filter((candidate) => candidate.startsWith(id));
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) throw new ReportNotFoundError(`run id '${id}' is ambiguous: ${matches.join(', ')}`);
  throw new ReportNotFoundError(`no run '${id}' in ${reportDir}; latest: ${ids.slice(-3).reverse().join(', ')}`);
}
