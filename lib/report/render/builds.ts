/**
 * What a run built: each derivation Nix built, where (the machine Nix's log
 * named: lib/nix/build-log.ts BuildRecord) and how long (from its start to its
 * stop record, when the log had both), and the seed-build stage's wall time.
 * Shown by the text and markdown renderings (the CI step summary) of runs
 * that have a seed build.
 */
import { drvName } from '../../nix/build-log.ts';
import { formatDuration } from '../format.ts';
import type { RunReport } from '../report.ts';
import { type Column, markdownTable, textTable } from './table.ts';

const COLUMNS: readonly Column[] = [{ header: 'derivation' }, { header: 'built on' }, { header: 'took', align: 'right' }];

/** `built 2 derivations (seed build 41.3s)`, or that nothing was built; undefined for a run whose seed build never started (a rollback has none). */
export function buildsSummary(report: RunReport): string | undefined {
  const stage = report.stages.find((s) => s.name === 'seed-build');
  if (!stage || stage.outcome === 'not-started') return undefined;
  const wall = stage.durationMs === undefined ? stage.outcome : formatDuration(stage.durationMs);
  const count = report.builds.length;
  if (count === 0) {
    return stage.outcome === 'success' ? `nothing built: every toplevel was in the store already (seed build ${wall})` : `nothing built (seed build ${wall})`;
  }
  return `built ${count} derivation${count > 1 ? 's' : ''} (seed build ${wall})`;
}

function rows(report: RunReport): string[][] {
  return report.builds.map((b) => [drvName(b.drvPath), b.machine ?? 'this machine', b.durationMs === undefined ? '—' : formatDuration(b.durationMs)]);
}

/** The summary line and, when something was built, one row per derivation; nothing for a run without a seed build. */
export function buildsText(report: RunReport): string[] {
  const summary = buildsSummary(report);
  if (summary === undefined) return [];
  return [summary, ...(report.builds.length ? textTable(COLUMNS, rows(report)).map((line) => `  ${line}`) : [])];
}

/** The same as GitHub-flavoured markdown (the CI job's step summary). */
export function buildsMarkdown(report: RunReport): string[] {
  const summary = buildsSummary(report);
  if (summary === undefined) return [];
  return [`**${summary}**`, ...(report.builds.length ? ['', ...markdownTable(COLUMNS, rows(report))] : [])];
}
