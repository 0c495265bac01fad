/** GitHub-flavoured markdown of a run, e.g. for `$GITHUB_STEP_SUMMARY`: the table, the verdict, what was built (where, how long) and the hosts' closure changes. */
import type { Comparison } from '../compare.ts';
import type { RunReport } from '../report.ts';
import { buildsMarkdown } from './builds.ts';
import { closureDiffMarkdown } from './closure-diff.ts';
import { markdownTable, reportTable } from './table.ts';
import { renderVerdict, runSubject } from './verdict.ts';

export function renderMarkdown(report: RunReport, comparison?: Comparison): string {
  const table = reportTable(report, comparison, '↳ ');
  const lines = [
    `### avalanche-deploy run \`${report.id}\`: ${report.outcome}`,
    '',
    `${runSubject(report)}, started ${report.startedAt}`,
    '',
    ...markdownTable(table.columns, table.rows),
    '',
    `**${renderVerdict(report, comparison)}**`,
  ];
  if (report.error) lines.push('', 'error:', '', ...codeBlock(report.error));
  const builds = buildsMarkdown(report);
  if (builds.length) lines.push('', ...builds);
  const changes = closureDiffMarkdown(report);
  if (changes.length) lines.push('', ...changes);
  return lines.join('\n');
}

/** A fence longer than any run of backticks inside, so the text cannot close it. */
function codeBlock(text: string): string[] {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return [`${fence}text`, text, fence];
}
