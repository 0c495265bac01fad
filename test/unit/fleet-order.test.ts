/**
 * The whole fleet's order (issue 14): the cache host and the machine the run
 * is on go last, alone, and only when nothing failed before them: a failed
 * opi must not be followed by hawk's switch (its cache serves the others) or
 * by the switch of the machine the run is on.
 */
import { describe, expect, it } from 'vitest';
import type { PlanOptions } from '../../lib/plan/assemble.ts';
import { runPipeline } from '../helpers/pipeline.ts';

/** A deploy of the whole fleet whose nixos-rebuild fails for `failing`; every other step answers as a healthy host would. */
async function deployFleet(failing: string, options: Partial<PlanOptions> & Pick<PlanOptions, 'onCoordinator'>) {
  const fails = (spec: { argv: readonly string[] }) =>
    spec.argv.includes('nixos-rebuild') && spec.argv.some((a) => a.endsWith(`#${failing}`)) ? { exitCode: 1, stderr: 'activation failed' } : undefined;
  const { plan, result, executor } = await runPipeline([fails], { wholeFleet: true, plan: { localUser: 'avl', ...options } });
  const states = Object.fromEntries(result.report.hosts.map((h) => [h.name, h.state]));
  const rebuilt = executor.calls.filter((c) => c.argv.includes('nixos-rebuild')).map((c) => c.argv.find((a) => a.includes('#'))!.split('#')[1]);
  return { plan, result, states, rebuilt };
}

describe('the whole fleet: the cache host and this machine last, and only after the others went well', () => {
  it('on hawk: a failed opi leaves hawk (the cache host, this machine) not started; the rest of its wave goes on', async () => {
    const { plan, result, states, rebuilt } = await deployFleet('opi01', { onCoordinator: true, thisMachine: 'hawk' });
    expect(plan.waves).toEqual([['opi01', 'opi02', 'opi03', 'calypso'], ['hawk']]);
    expect(result.outcome).toBe('failed');
    expect(states).toMatchObject({ opi01: 'rolled-back', opi02: 'deployed', calypso: 'deployed', hawk: 'not-started' });
    expect(rebuilt).not.toContain('hawk');
  });

  it('from calypso: a failed opi leaves hawk and calypso not started', async () => {
    const { plan, states, rebuilt } = await deployFleet('opi02', { onCoordinator: false, thisMachine: 'calypso' });
    expect(plan.waves).toEqual([['opi01', 'opi02', 'opi03'], ['hawk'], ['calypso']]);
    expect(states).toMatchObject({ opi01: 'deployed', opi02: 'rolled-back', hawk: 'not-started', calypso: 'not-started' });
    expect(rebuilt.sort()).toEqual(['opi01', 'opi02', 'opi03']);
  });

  it('a failed cache host stops this machine; --keep-going lets the last waves go after a failure', async () => {
    const hawkFailed = await deployFleet('hawk', { onCoordinator: false, thisMachine: 'calypso' });
    expect(hawkFailed.states).toMatchObject({ hawk: 'rolled-back', calypso: 'not-started' });
    const kept = await deployFleet('opi01', { onCoordinator: false, thisMachine: 'calypso', keepGoing: true });
    expect(kept.states).toMatchObject({ opi01: 'rolled-back', hawk: 'deployed', calypso: 'deployed' });
  });

  it('nothing failed: every host deployed, hawk after the others, calypso last', async () => {
    const { result, states } = await deployFleet('none', { onCoordinator: false, thisMachine: 'calypso' });
    expect(result.outcome).toBe('success');
    expect(Object.values(states).every((s) => s === 'deployed')).toBe(true);
    const start = (name: string) => result.report.hosts.find((h) => h.name === name)!.startMs!;
    const end = (name: string) => start(name) + result.report.hosts.find((h) => h.name === name)!.durationMs!;
    expect(start('hawk')).toBeGreaterThanOrEqual(Math.max(end('opi01'), end('opi02')));
    expect(start('calypso')).toBeGreaterThanOrEqual(end('hawk'));
  });
});
