/**
 * The hosts' closure diffs (what each new system changes against the one
 * the host ran, lib/nix/closure-diff.ts) as text, markdown and HTML: per
 * host a line with the summary and the closure sizes, then its packages,
 * changed first, then added, removed and resized. Nothing for a run whose
 * hosts carry no diff.
 */
import {
  type ClosureDiff,
  formatBytes,
  formatVersionChange,
  type HostClosureDiff,
  type PackageChange,
  summarizeClosureDiff,
} from '../../nix/closure-diff.ts';
import type { RunReport } from '../report.ts';
import { type Column, markdownTable, textTable } from './table.ts';

/** Changed packages first (a kernel's new version is what an operator looks for), then added, removed, resized. */
const ORDER: readonly PackageChange[] = ['changed', 'added', 'removed', 'resized'];
const COLUMNS: readonly Column[] = [{ header: 'package' }, { header: 'change' }, { header: 'versions' }, { header: 'size', align: 'right' }];

/** The hosts that carry a diff, in the report's order. */
function hostDiffs(report: RunReport): { host: string; diff: HostClosureDiff }[] {
  return report.hosts.flatMap((h) => (h.diff ? [{ host: h.name, diff: h.diff }] : []));
}

/** `4 changed (linux 6.1.1 → 6.1.2), 1 added, +78.6 KiB (closure 61.0 KiB → 139.6 KiB)`, or `first deploy, 139.6 KiB`. */
export function describeClosureDiff(diff: HostClosureDiff): string {
  const summary = summarizeClosureDiff(diff);
  return diff.kind === 'diff' ? `${summary} (closure ${formatBytes(diff.closureBytes.before)} → ${formatBytes(diff.closureBytes.after)})` : summary;
}

/** One row per package: name, change, `old → new` versions, size change; changed first, then added, removed, resized. */
export function closureDiffRows(diff: ClosureDiff): string[][] {
  return ORDER.flatMap((change) =>
    diff.packages
      .filter((p) => p.change === change)
      .map((p) => [p.name, p.change, formatVersionChange(p), p.sizeDeltaBytes === undefined ? '' : formatBytes(p.sizeDeltaBytes, { signed: true })]),
  );
}

/** One host's line and its packages' table (indented), as the terminal shows them: in the report, and before --interactive asks. */
export function hostClosureDiffText(host: string, diff: HostClosureDiff): string[] {
  return [
    `  ${host}: ${describeClosureDiff(diff)}`,
    ...(diff.kind === 'diff' && diff.packages.length > 0 ? textTable(COLUMNS, closureDiffRows(diff)).map((line) => `    ${line}`) : []),
  ];
}

/** The terminal's section: `closure changes`, then per host its line and its packages' table, indented. */
export function closureDiffText(report: RunReport): string[] {
  const diffs = hostDiffs(report);
  if (diffs.length === 0) return [];
  return ['closure changes:', ...diffs.flatMap(({ host, diff }) => hostClosureDiffText(host, diff))];
}

/** For HTML inside markdown (a <summary>): only what could open a tag or an entity. */
function escapeInline(text: string): string {
  return text.replace(/[&<>]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The markdown section (the CI step summary): per host its line, its
 * packages' table folded in a <details> (a fleet's diff runs to hundreds of
 * lines; GitHub renders the fold).
 */
export function closureDiffMarkdown(report: RunReport): string[] {
  const diffs = hostDiffs(report);
  if (diffs.length === 0) return [];
  return [
    '#### Closure changes',
    ...diffs.flatMap(({ host, diff }) => {
      const what = escapeInline(describeClosureDiff(diff));
      if (diff.kind !== 'diff' || diff.packages.length === 0) return ['', `**${escapeInline(host)}**: ${what}`];
      // Inside HTML GitHub reads no markdown: the host in <b>, not **.
      return ['', '<details>', `<summary><b>${escapeInline(host)}</b>: ${what}</summary>`, '', ...markdownTable(COLUMNS, closureDiffRows(diff)), '', '</details>'];
    }),
  ];
}

/** The HTML page's section: per host a <details> with its packages' table, open by default. */
export function closureDiffHtml(report: RunReport, escapeHtml: (text: string) => string): string {
  const diffs = hostDiffs(report);
  if (diffs.length === 0) return '';
  const table = (diff: ClosureDiff) => {
    const head = COLUMNS.map((c) => `<th${c.align === 'right' ? ' class="num"' : ''}>${escapeHtml(c.header)}</th>`).join('');
    const rows = closureDiffRows(diff).map(
      (row) => `<tr class="${escapeHtml(row[1]!)}">${row.map((cell, j) => `<td${COLUMNS[j]?.align === 'right' ? ' class="num"' : ''}>${escapeHtml(cell)}</td>`).join('')}</tr>`,
    );
    return `<table class="diff">\n<thead><tr>${head}</tr></thead>\n<tbody>\n${rows.join('\n')}\n</tbody>\n</table>`;
  };
  const hosts = diffs.map(({ host, diff }) => {
    const line = `<b>${escapeHtml(host)}</b>: ${escapeHtml(describeClosureDiff(diff))}`;
    if (diff.kind !== 'diff' || diff.packages.length === 0) return `<p class="diff-host">${line}</p>`;
    return `<details class="diff-host" open>\n<summary>${line}</summary>\n${table(diff)}\n</details>`;
  });
  return `<h2>Closure changes</h2>\n${hosts.join('\n')}\n`;
}
