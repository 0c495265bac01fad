/**
 * One self-contained HTML page per run: inline CSS and an inline SVG
 * timeline, nothing fetched from anywhere, no scripts (hover titles are SVG
 * <title>s), so it can be mailed, archived as a CI artifact or opened offline.
 */
import type { Comparison } from '../compare.ts';
import type { RunReport } from '../report.ts';
import { formatDuration } from '../format.ts';
import { closureDiffHtml } from './closure-diff.ts';
import { reportTable } from './table.ts';
import { axisTicks, formatTick, type TimelineRow, timelineRows, timelineSpanMs } from './timeline.ts';
import { renderVerdict, runSubject } from './verdict.ts';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function renderHtml(report: RunReport, comparison?: Comparison): string {
  const hosts = report.hosts.map((h) => h.name).join(', ');
  const table = reportTable(report, comparison, '');
  const hostRow = (i: number) => i >= report.stages.length;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>avalanche-deploy run ${escapeHtml(report.id)}: ${escapeHtml(report.outcome)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>avalanche-deploy run <code>${escapeHtml(report.id)}</code> <span class="badge ${report.outcome}">${escapeHtml(report.outcome)}</span></h1>
<p class="meta">${escapeHtml(runSubject(report))}${report.flake ? ` · flake <code>${escapeHtml(report.flake)}</code>` : ''} · started ${escapeHtml(report.startedAt)}</p>
<p class="verdict ${report.outcome}">${escapeHtml(renderVerdict(report, comparison))}</p>
${report.error ? `<pre class="error">${escapeHtml(report.error)}</pre>\n` : ''}<h2>Timeline</h2>
${timelineSvg(report)}
<p class="legend"><span class="swatch stage"></span>stage <span class="swatch host"></span>host <span class="swatch failed"></span>failed <span class="swatch interrupted"></span>interrupted</p>
<h2>Stages and hosts</h2>
<table>
<thead><tr>${table.columns.map((c) => `<th${c.align === 'right' ? ' class="num"' : ''}>${escapeHtml(c.header)}</th>`).join('')}</tr></thead>
<tbody>
${table.rows
  .map((row, i) => `<tr${hostRow(i) ? ' class="host"' : ''}>${row.map((cell, j) => `<td${table.columns[j]?.align === 'right' ? ' class="num"' : ''}>${escapeHtml(cell)}</td>`).join('')}</tr>`)
  .join('\n')}
</tbody>
</table>
${closureDiffHtml(report, escapeHtml)}${buildsSection(report)}${commandsSection(report)}</main>
</body>
</html>
`;
}

const LABEL_WIDTH = 150;
const CHART_WIDTH = 660;
const NOTE_WIDTH = 150;
const ROW_HEIGHT = 26;
const BAR_HEIGHT = 16;
const AXIS_HEIGHT = 24;

/** The timeline as SVG: one <rect class="bar …"> per stage and host that ran. */
export function timelineSvg(report: RunReport): string {
  const rows = timelineRows(report);
  const spanMs = timelineSpanMs(report, rows);
  const x = (ms: number) => LABEL_WIDTH + (ms / spanMs) * CHART_WIDTH;
  const chartHeight = rows.length * ROW_HEIGHT;
  const width = LABEL_WIDTH + CHART_WIDTH + NOTE_WIDTH;
  const ticks = axisTicks(spanMs, 8).map((t) => {
    const at = x(t).toFixed(1);
    return `<line class="grid" x1="${at}" x2="${at}" y1="0" y2="${chartHeight}"/><text class="tick" x="${at}" y="${chartHeight + 16}">${escapeHtml(formatTick(t))}</text>`;
  });
  const bars = rows.map((row, i) => svgRow(row, i * ROW_HEIGHT, x));
  return `<svg class="timeline" role="img" aria-label="timeline of the run" width="${width}" height="${chartHeight + AXIS_HEIGHT}" viewBox="0 0 ${width} ${chartHeight + AXIS_HEIGHT}">
${ticks.join('\n')}
${bars.join('\n')}
</svg>`;
}

function svgRow(row: TimelineRow, top: number, x: (ms: number) => number): string {
  const middle = top + ROW_HEIGHT / 2 + 4;
  const label = `<text class="label${row.host ? ' host' : ''}" x="${row.host ? 22 : 6}" y="${middle}">${escapeHtml(row.label)}</text>`;
  if (!row.bar) return `${label}<text class="note" x="${LABEL_WIDTH + CHART_WIDTH + 8}" y="${middle}">— ${escapeHtml(row.outcome)}</text>`;
  const { startMs, durationMs, kind } = row.bar;
  const duration = formatDuration(durationMs);
  const note = kind === 'success' ? duration : `${duration} ${row.outcome}`;
  const classes = ['bar', row.host ? 'host' : 'stage', ...(kind === 'success' ? [] : [kind])].join(' ');
  // At least 2px: a 10 ms stage still shows where it sat.
  const barWidth = Math.max(2, x(startMs + durationMs) - x(startMs));
  const tooltip = `${row.label}: ${note}, from ${formatDuration(startMs)} to ${formatDuration(startMs + durationMs)}`;
  return `${label}<rect class="${classes}" x="${x(startMs).toFixed(1)}" y="${top + (ROW_HEIGHT - BAR_HEIGHT) / 2}" width="${barWidth.toFixed(1)}" height="${BAR_HEIGHT}" rx="2"><title>${escapeHtml(tooltip)}</title></rect><text class="note" x="${LABEL_WIDTH + CHART_WIDTH + 8}" y="${middle}">${escapeHtml(note)}</text>`;
}

function buildsSection(report: RunReport): string {
  if (report.builds.length === 0) return '';
  const items = report.builds.map((b) => `<li><code>${escapeHtml(b.drvPath)}</code> on ${escapeHtml(b.machine ?? 'this machine')}${b.durationMs === undefined ? '' : `, ${formatDuration(b.durationMs)}`}</li>`);
  return `<h2>Builds</h2>\n<ul class="builds">\n${items.join('\n')}\n</ul>\n`;
}

function commandsSection(report: RunReport): string {
  if (report.commands.length === 0) return '';
  const runStart = Date.parse(report.startedAt);
  const rows = [...report.commands]
    .sort((a, b) => a.startedAt - b.startedAt)
    .map(
      (c) =>
        `<tr><td class="num">${escapeHtml(formatDuration(Math.max(0, c.startedAt - runStart)))}</td><td class="num">${escapeHtml(formatDuration(c.durationMs))}</td><td class="num">${c.exitCode ?? 'killed'}</td><td><code>${escapeHtml(c.argv.join(' '))}</code></td></tr>`,
    );
  return `<details>
<summary>Commands (${report.commands.length})</summary>
<table class="commands">
<thead><tr><th class="num">at</th><th class="num">duration</th><th class="num">exit</th><th>command</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
</details>
`;
}

const STYLE = `
:root { color-scheme: light; --ok: #2f855a; --host: #68d391; --failed: #e53e3e; --interrupted: #d69e2e; --muted: #666; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a202c; background: #f7fafc; }
main { max-width: 1000px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
code { font: 13px ui-monospace, "SFMono-Regular", Menlo, monospace; }
.meta { color: var(--muted); margin: 0 0 12px; }
.verdict { font-size: 17px; font-weight: 600; padding: 10px 14px; background: #fff; border-left: 4px solid var(--ok); }
.verdict.failed { border-color: var(--failed); }
.verdict.interrupted { border-color: var(--interrupted); }
.badge { font-size: 13px; padding: 2px 8px; border-radius: 10px; color: #fff; vertical-align: middle; background: var(--ok); }
.badge.failed { background: var(--failed); }
.badge.interrupted { background: var(--interrupted); }
.error { background: #fff5f5; border: 1px solid #feb2b2; padding: 10px; white-space: pre-wrap; }
svg.timeline { display: block; max-width: 100%; height: auto; background: #fff; border: 1px solid #e2e8f0; }
svg .label { font-size: 13px; fill: #1a202c; }
svg .label.host { fill: #4a5568; }
svg .note { font-size: 12px; fill: #4a5568; }
svg .tick { font-size: 11px; fill: var(--muted); text-anchor: middle; }
svg .grid { stroke: #edf2f7; stroke-width: 1; }
svg .bar.stage { fill: var(--ok); }
svg .bar.host { fill: var(--host); }
svg .bar.failed { fill: var(--failed); }
svg .bar.interrupted { fill: var(--interrupted); }
.legend { color: var(--muted); font-size: 13px; }
.swatch { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; vertical-align: -1px; border-radius: 2px; background: var(--ok); }
.swatch.host { background: var(--host); }
.swatch.failed { background: var(--failed); }
.swatch.interrupted { background: var(--interrupted); }
table { border-collapse: collapse; background: #fff; }
th, td { text-align: left; padding: 4px 12px; border-bottom: 1px solid #e2e8f0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.host td:first-child { padding-left: 28px; }
details { margin-top: 28px; }
summary { cursor: pointer; font-weight: 600; }
table.commands td { vertical-align: top; }
table.commands code { word-break: break-all; }
.diff-host { margin: 8px 0; }
table.diff tr.added td:nth-child(2) { color: var(--ok); }
table.diff tr.removed td:nth-child(2) { color: var(--failed); }
`;
