/** The doctor's results as text (✔/✖/⚠, what it tried, the hints) and as JSON. */
import chalk from 'chalk';
import { countByStatus, healthy } from './run.ts';
import type { CheckResult, CheckStatus } from './types.ts';

const SYMBOLS: Record<CheckStatus, string> = {
  pass: chalk.green('✔'),
  fail: chalk.red('✖'),
  warn: chalk.yellow('⚠'),
  skip: chalk.dim('↓'),
};

export function renderResult(result: CheckResult): string {
  const lines = [`${SYMBOLS[result.status]} ${result.title}: ${result.summary}`];
  for (const tried of result.tried) lines.push(chalk.dim(`    ${tried.startsWith('GET ') ? '' : '$ '}${tried}`));
  for (const detail of result.details) lines.push(`    ${detail}`);
  for (const hint of result.hints) lines.push(chalk.yellow(`    hint: ${hint}`));
  return lines.join('\n');
}

export function renderSummary(results: readonly CheckResult[]): string {
  const counts = countByStatus(results);
  const parts = [`${counts.pass} passed`, `${counts.fail} failed`, `${counts.warn} warned`, ...(counts.skip ? [`${counts.skip} skipped`] : [])];
  const verdict = healthy(results) ? chalk.green('healthy') : chalk.red('problems found');
  return `doctor: ${parts.join(', ')} — ${verdict}`;
}

export function resultsAsJson(results: readonly CheckResult[], exitCode: number): unknown {
  return { outcome: healthy(results) ? 'healthy' : 'problems', exitCode, counts: countByStatus(results), checks: results };
}
