/** The doctor's results as text (✔/✖/⚠, what it tried, the hints) and as JSON. */
import type { ChalkInstance } from 'chalk';
import { countByStatus, healthy } from './run.ts';
import type { CheckResult, CheckStatus } from './types.ts';

const symbols = (chalk: ChalkInstance): Record<CheckStatus, string> => ({
  pass: chalk.green('✔'),
  fail: chalk.red('✖'),
  warn: chalk.yellow('⚠'),
  skip: chalk.dim('↓'),
});

/**
 * One check's lines: ✔/✖/⚠/↓, what it tried, details and hints. `chalk`:
 * the colours to use, chosen by the caller for its output (lib/cli/colour.ts,
 * which honours NO_COLOR and FORCE_COLOR).
 */
export function renderResult(result: CheckResult, chalk: ChalkInstance): string {
  const lines = [`${symbols(chalk)[result.status]} ${result.title}: ${result.summary}`];
  for (const tried of result.tried) lines.push(chalk.dim(`    ${tried.startsWith('GET ') ? '' : '$ '}${tried}`));
  for (const detail of result.details) lines.push(`    ${detail}`);
  for (const hint of result.hints) lines.push(chalk.yellow(`    hint: ${hint}`));
  return lines.join('\n');
}

/** `doctor: N passed, N failed, N warned — healthy|problems found`, coloured with `chalk` (see renderResult). */
export function renderSummary(results: readonly CheckResult[], chalk: ChalkInstance): string {
  const counts = countByStatus(results);
  const parts = [`${counts.pass} passed`, `${counts.fail} failed`, `${counts.warn} warned`, ...(counts.skip ? [`${counts.skip} skipped`] : [])];
  const verdict = healthy(results) ? chalk.green('healthy') : chalk.red('problems found');
  return `doctor: ${parts.join(', ')} — ${verdict}`;
}

/** The --json answer: outcome, exit code, counts and every check's result. */
export function resultsAsJson(results: readonly CheckResult[], exitCode: number): unknown {
  return { outcome: healthy(results) ? 'healthy' : 'problems', exitCode, counts: countByStatus(results), checks: results };
}
