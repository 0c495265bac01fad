/** Tables, plain-text and markdown, shared by every renderer of runs; and a run's own table of stages and hosts. */
import type { Comparison } from '../compare.ts';
import type { HostEntry, RunReport } from '../report.ts';
import { formatDuration } from '../format.ts';
import { goalEffect, type HostEffect } from '../timing.ts';

export interface Column {
  readonly header: string;
  readonly align?: 'left' | 'right';
}

/** Columns padded to their widest cell, two spaces apart; no trailing blanks. */
export function textTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string[] {
  const widths = columns.map((column, i) => Math.max(column.header.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    columns
      .map((column, i) => {
        const cell = cells[i] ?? '';
        return column.align === 'right' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...rows.map(line)];
}

/** GitHub-flavoured markdown; `|` in a cell is escaped so it cannot split the row. */
export function markdownTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string[] {
  const line = (cells: readonly string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [
    line(columns.map((c) => c.header)),
    `|${columns.map((c) => (c.align === 'right' ? '---:' : '---')).join('|')}|`,
    ...rows.map((row) => line(columns.map((_, i) => row[i] ?? ''))),
  ];
}

export interface ReportTable {
  readonly columns: readonly Column[];
  readonly rows: readonly string[][];
}

/** Stage / host, duration, the comparison's duration if any, outcome; hosts prefixed with `hostPrefix`. */
export function reportTable(report: RunReport, comparison?: Comparison, hostPrefix = '  '): ReportTable {
  const duration = (ms: number | undefined) => (ms === undefined ? '—' : formatDuration(ms));
  const compared = (ms: number | undefined) => (comparison ? [duration(ms)] : []);
  return {
    columns: [
      { header: 'stage / host' },
      { header: 'duration', align: 'right' },
      ...(comparison ? [{ header: comparison.column, align: 'right' as const }] : []),
      { header: 'outcome' },
    ],
    rows: [
      ...report.stages.map((s) => [s.name, duration(s.durationMs), ...compared(comparison?.stageMs[s.name]), s.outcome]),
      ...report.hosts.map((h) => [`${hostPrefix}${h.name}`, duration(h.durationMs), ...compared(comparison?.hostMs[h.name]), hostOutcome(h, report.goal, report.operation)]),
    ],
  };
}

/** What each goal's effect on a deployed host is, in words, and what the words in parentheses say. */
const EFFECT_WORDS: Readonly<Record<HostEffect, readonly [string, string]>> = {
  switched: ['switched', 'new generation, boot default'],
  'boot-default': ['boot default set', 'runs the old one until reboot'],
  activated: ['activated until reboot', 'boot default unchanged'],
  checked: ['checked', 'nothing changed'],
  unchanged: ['unchanged', 'already ran this toplevel'],
  rebooted: ['rebooted', 'booted the new generation, boot default'],
};

/** The same for a rollback, whose "new" generation is the older one it went back to. */
const ROLLBACK_EFFECT_WORDS: Readonly<Record<HostEffect, readonly [string, string]>> = {
  ...EFFECT_WORDS,
  switched: ['switched back', 'to the chosen generation, boot default'],
  'boot-default': ['boot default set back', 'runs the newer one until reboot'],
  activated: ['activated the chosen generation until reboot', 'boot default unchanged'],
  rebooted: ['rebooted', 'booted the chosen generation, boot default'],
};

/**
 * A host's outcome as the table says it. A deployed host: what its goal did
 * there (`switched (new generation, boot default)`, `activated until reboot
 * (boot default unchanged)`, …; reports written before effects were recorded:
 * what the run's goal does). Any other: its state and the generation it is on
 * (`rolled-back (previous generation)`), where a host that had no system
 * profile before says `first deploy` instead of a previous generation it never
 * had. Reports written before generations were recorded say only the state.
 */
function hostOutcome(host: HostEntry, goal: string, operation: RunReport['operation']): string {
  const firstDeploy = host.firstDeploy === true;
  if (host.state === 'built') return 'built (pinned, served signed; host untouched)';
  if (host.state === 'deployed') {
    const effect = host.effect ?? goalEffect(goal);
    if (effect) {
      const [done, detail] = operation === 'rollback' ? ROLLBACK_EFFECT_WORDS[effect] : EFFECT_WORDS[effect];
      return `${done} (${detail}${firstDeploy ? '; first deploy' : ''})`;
    }
  }
  if (!host.generation) return host.state;
  if (firstDeploy) return `${host.state} (first deploy${host.generation === 'previous' ? '' : `, ${host.generation} generation`})`;
  return `${host.state} (${host.generation} generation)`;
}
