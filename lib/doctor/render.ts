/** The doctor's results as text (✔/✖/⚠, what it tried, the hints) and as JSON. */
import type { ChalkInstance } from 'chalk';
import { z } from 'zod';
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

const STATUSES = ['pass', 'warn', 'fail', 'skip'] as const satisfies readonly CheckStatus[];
const lines = z.array(z.string()).readonly();
const count = z.number().int().min(0);

/** One check's result in the JSON answer: what {@link CheckResult} is (checked below at compile time). */
const checkResultSchema = z.object({
  id: z.string(),
  title: z.string(),
  status: z.enum(STATUSES),
  summary: z.string(),
  tried: lines,
  details: lines.default([]),
  hints: lines.default([]),
});

/** `doctor --json` (schemas/doctor.schema.json, made by lib/cli/schemas.ts; errors are lib/cli/io.ts errorOutputSchema). */
export const doctorOutputSchema = z
  .object({
    outcome: z.enum(['healthy', 'problems']),
    exitCode: z.number().int().min(0).max(255),
    counts: z.object({ pass: count, warn: count, fail: count, skip: count }),
    checks: z.array(checkResultSchema),
  })
  .meta({ title: 'avalanche-deploy doctor --json', description: 'Every check in a fixed order; outcome "problems" (exit 1) when one failed, warnings allowed.' });
export type DoctorOutput = z.infer<typeof doctorOutputSchema>;

// The schema and the types the checks produce are the same shape, or this does not compile.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const resultMatches: Same<z.infer<typeof checkResultSchema>, CheckResult> = true;
const countsMatch: Same<DoctorOutput['counts'], ReturnType<typeof countByStatus>> = true;
void [resultMatches, countsMatch];

/** The --json answer: outcome, exit code, counts and every check's result, made through {@link doctorOutputSchema}. */
export function resultsAsJson(results: readonly CheckResult[], exitCode: number): DoctorOutput {
  return doctorOutputSchema.parse({ outcome: healthy(results) ? 'healthy' : 'problems', exitCode, counts: countByStatus(results), checks: results });
}
