/** A run as a terminal shows it: after a deploy, and in scripts/report.ts. */
import type { Comparison } from '../compare.ts';
import type { RunReport } from '../report.ts';
import { buildsText } from './builds.ts';
import { closureDiffText } from './closure-diff.ts';
import { reportTable, textTable } from './table.ts';
import { renderTimeline } from './timeline.ts';
import { renderVerdict, runSubject } from './verdict.ts';

export interface RenderOptions {
  readonly comparison?: Comparison | undefined;
  /** columns the timeline fits in */
  readonly width?: number | undefined;
}

/** The table, what was built (where, how long), the hosts' closure changes (when diffed), the timeline and the verdict: what a terminal shows after a run. */
export function renderReport(report: RunReport, options: RenderOptions = {}): string {
  const table = reportTable(report, options.comparison);
  const changes = closureDiffText(report);
  const builds = buildsText(report);
  return [
    ...textTable(table.columns, table.rows),
    ...(builds.length ? ['', ...builds] : []),
    ...(changes.length ? ['', ...changes] : []),
    '',
    renderTimeline(report, options.width),
    '',
    renderVerdict(report, options.comparison),
  ].join('\n');
}

/** One line saying which run this is: `run <id>: success — switch of a, b (seed a), started <ISO time>` (lib/report/render/verdict.ts runSubject). */
export function describeRun(report: RunReport): string {
  return `run ${report.id}: ${report.outcome} — ${runSubject(report)}, started ${report.startedAt}`;
}
