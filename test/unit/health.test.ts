/**
 * Health checks (lib/stages/health.ts): a round asks its checks side by side,
 * each retried on its own; the failure told is the first check in the plan's
 * order that gave up.
 */
import { describe, expect, it } from 'vitest';
import { type HealthCheck, runHealthChecks } from '../../lib/stages/health.ts';

const options = { retries: 1, intervalMs: 10, signal: new AbortController().signal };

describe('health checks', () => {
  it('asks every check of a round at once, not one after the other', async () => {
    // Each passes only once the other has been asked (or after 2 s): one after the other, the second would be
    // asked only after the first answered.
    const asked: string[] = [];
    let answered = 0;
    let bothAsked!: () => void;
    const both = new Promise<void>((resolve) => (bothAsked = resolve));
    const held = (name: string): HealthCheck => ({
      name,
      run: async () => {
        asked.push(`${name} asked after ${answered} answers`);
        if (asked.length === 2) bothAsked();
        await Promise.race([both, new Promise((resolve) => setTimeout(resolve, 2000))]);
        answered++;
      },
    });
    expect(await runHealthChecks([held('ssh answers'), held('units active')], options)).toEqual({});
    expect(asked).toEqual(['ssh answers asked after 0 answers', 'units active asked after 0 answers']);
  });

  it('retries each check on its own, and tells the first check in order that gave up', async () => {
    const tries: Record<string, number> = { first: 0, second: 0, third: 0 };
    const check = (name: string, passesOnTry: number): HealthCheck => ({
      name,
      run: async () => {
        tries[name]! += 1;
        if (tries[name]! < passesOnTry) throw new Error(`${name} not yet`);
      },
    });
    const outcome = await runHealthChecks([check('first', 2), check('second', 99), check('third', 99)], options);
    expect(outcome).toEqual({ failed: { check: 'second', reason: 'second not yet', attempts: 2 } });
    expect(tries).toEqual({ first: 2, second: 2, third: 2 });
  });
});
