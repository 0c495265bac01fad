/**
 * Runs every check at once (each is bounded by its own timeouts) and hands
 * the results over in the checks' order, so the output reads the same on
 * every run. A check that throws is reported as failed, never lost.
 */
import { InterruptedError } from '../errors.ts';
import type { Check, CheckOutcome, CheckResult, CheckStatus, DoctorContext } from './types.ts';
import { describeError } from './checks/outcome.ts';

async function settle(check: Check, ctx: DoctorContext): Promise<CheckResult> {
  let outcome: CheckOutcome;
  try {
    outcome = await check.run(ctx);
  } catch (error) {
    outcome = { status: 'fail', summary: describeError(error), tried: [] };
  }
  return { id: check.id, title: check.title, details: [], hints: [], ...outcome };
}

export async function runChecks(
  checks: readonly Check[],
  ctx: DoctorContext,
  onResult: (result: CheckResult) => void = () => {},
): Promise<CheckResult[]> {
  const pending = checks.map((check) => settle(check, ctx));
  const results: CheckResult[] = [];
  for (const next of pending) {
    const result = await next;
    onResult(result);
    results.push(result);
  }
  if (ctx.signal?.aborted) throw new InterruptedError();
  return results;
}

export function countByStatus(results: readonly CheckResult[]): Record<CheckStatus, number> {
  const counts: Record<CheckStatus, number> = { pass: 0, warn: 0, fail: 0, skip: 0 };
  for (const result of results) counts[result.status] += 1;
  return counts;
}

/** Warnings do not fail the doctor: they name something to look at, not something broken. */
export function healthy(results: readonly CheckResult[]): boolean {
  return results.every((result) => result.status !== 'fail');
}
