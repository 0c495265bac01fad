/**
 * Every JSON Schema the project publishes, each generated from the zod
 * schema the code itself validates with, and parses its output through
 * before printing it, so the two cannot drift (scripts/write-schema.ts
 * writes them; CI checks they are current):
 * - inventory.schema.json: hosts.json, for editors;
 * - schemas/dry-run.schema.json: `--dry-run --json` (lib/plan/render.ts dryRunJson);
 * - schemas/deploy-result.schema.json: `--json` after a run ({@link deployResultJson});
 * - schemas/error.schema.json: `--json` when an error ends a command (lib/cli/io.ts failure);
 * - schemas/doctor.schema.json: `doctor --json` (lib/doctor/render.ts resultsAsJson);
 * - schemas/exec.schema.json: `exec --json` (lib/cli/exec.ts execOutputSchema);
 * - schemas/generations.schema.json: `generations --json` (lib/cli/generations.ts generationsJsonSchema).
 */
import { z } from 'zod';
import { doctorOutputSchema } from '../doctor/render.ts';
import { inventoryJsonSchema } from '../inventory/schema.ts';
import { dryRunOutputSchema } from '../plan/types.ts';
import { runOutcomeSchema, runReportSchema } from '../report/report.ts';
import type { RunResult } from '../run/run.ts';
import { execOutputSchema } from './exec.ts';
import { generationsJsonSchema } from './generations.ts';
import { errorJson, errorOutputSchema, errorSchema } from './io.ts';

/** What deploy.ts and deploy-all.ts print under --json after a run, whatever its outcome. */
export const deployResultSchema = z
  .object({
    outcome: runOutcomeSchema,
    /** the command's exit status: 0 deployed, 1 a stage failed, 130 interrupted */
    exitCode: z.number().int().min(0).max(255),
    /** the run report's file; absent when none was written */
    reportPath: z.string().optional(),
    /** why the run did not succeed */
    error: errorSchema.optional(),
    /** the run report, as stored at reportPath */
    report: runReportSchema,
  })
  .meta({
    title: 'avalanche-deploy --json: a run',
    description: 'What deploy.ts and deploy-all.ts print on stdout under --json after a run; errors before a run are schemas/error.schema.json.',
  });

/** The deploy's --json answer after a run, made through {@link deployResultSchema}. */
export function deployResultJson(result: RunResult, exitCode: number): string {
  const answer = { outcome: result.outcome, exitCode, reportPath: result.reportPath, ...errorJson(result.error), report: result.report };
  return JSON.stringify(deployResultSchema.parse(answer), null, 2);
}

const output = (schema: z.ZodType) => () => z.toJSONSchema(schema, { io: 'output' });

export const JSON_SCHEMAS: readonly { readonly path: string; readonly schema: () => unknown }[] = [
  { path: 'inventory.schema.json', schema: inventoryJsonSchema },
  { path: 'schemas/dry-run.schema.json', schema: output(dryRunOutputSchema) },
  { path: 'schemas/deploy-result.schema.json', schema: output(deployResultSchema) },
  { path: 'schemas/error.schema.json', schema: output(errorOutputSchema) },
  { path: 'schemas/doctor.schema.json', schema: output(doctorOutputSchema) },
  { path: 'schemas/generations.schema.json', schema: output(generationsJsonSchema) },
  { path: 'schemas/exec.schema.json', schema: output(execOutputSchema) },
];
