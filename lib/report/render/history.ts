/** The run history as a table (`scripts/report.ts --history`): one line per run, and the usual total. */
import { recentMedians } from '../compare.ts';
import type { HistoryEntry } from '../history.ts';
import { formatDuration } from '../format.ts';
import { markdownTable, textTable } from './table.ts';

/** How many runs `--history` lists. */
export const HISTORY_ROWS = 20;

/** The last HISTORY_ROWS runs, oldest first, and the median of runs like the latest; `history` must not be empty. */
export function renderHistory(history: readonly HistoryEntry[], markdown: boolean): string {
  const shown = history.slice(-HISTORY_ROWS);
  const columns = [
    { header: 'run' },
    { header: 'outcome' },
    { header: 'goal' },
    { header: 'hosts' },
    { header: 'total', align: 'right' as const },
    { header: 'vs baseline', align: 'right' as const },
  ];
  const rows = shown.map((run) => [
    run.id,
    run.outcome,
    run.goal,
    run.hosts.length > 3 ? `${run.hosts.length} hosts` : run.hosts.join(','),
    formatDuration(run.totalMs),
    run.outcome === 'success' && run.verdict && run.verdict.speedup !== null ? `${run.verdict.speedup.toFixed(1)}×` : '—',
  ]);
  const latest = history.at(-1)!;
  const usual = recentMedians(history, latest);
  const lines = [
    ...(markdown ? markdownTable(columns, rows) : textTable(columns, rows)),
    '',
    `${shown.length < history.length ? `last ${shown.length} of ${history.length} runs; ` : ''}${
      usual
        ? `${usual.label} like the latest (${latest.goal} of ${latest.hosts.join(', ')}): ${formatDuration(usual.totalMs)}`
        : `no successful run like the latest (${latest.goal} of ${latest.hosts.join(', ')})`
    }`,
  ];
  return lines.join('\n');
}
