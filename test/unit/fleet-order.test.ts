/**
 * The whole fleet's order (issue 14): the cache host and the machine the run
 * is on go last, alone, and only when nothing failed before them: a failed
 * opi must not be followed by hawk's switch (its cache serves the others) or
 * by the switch of the machine the run is on.
 */
import { describe, expect, it } from 'vitest';
import { type PlanOptions, planDeploy } from '../../lib/plan/assemble.ts';
import { runPlan } from '../../lib/run/run.ts';
import { FIXTURE_KEY, FIXTURE_TOPLEVEL, fixture, wholeFleetInventory } from '../helpers/fixtures.ts';
import { startTestCache } from '../helpers/http-cache.ts';
import { FIXTURE_DRV } from '../helpers/pipeline.ts';
import { RecordingExecutor, when } from '../helpers/recording-executor.ts';

const HOSTS = ['opi01', 'opi02', 'opi03', 'hawk', 'calypso'];

/** A deploy of the whole fleet whose nixos-rebuild fails for `failing`; every other step answers as a healthy host would. */
async function deployFleet(failing: string, options: Partial<PlanOptions> & Pick<PlanOptions, 'onCoordinator'>) {
  const cache = await startTestCache({ '/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn.narinfo': fixture('narinfo/signed.narinfo') });
  try {
    const inventory = wholeFleetInventory((json) => {
      json.cache.url = cache.url;
      json.cache.publicKey = FIXTURE_KEY;
      json.timeouts.cacheWaitSeconds = 1;
      json.health = { systemState: 'skip', retries: 0, intervalSeconds: 0, settleSeconds: 0 };
    });
    const plan = planDeploy(inventory, HOSTS, { goal: 'switch', localUser: 'avl', ...options });
    const executor = new RecordingExecutor([
      when(['eval'], { stdout: JSON.stringify(Object.fromEntries(HOSTS.map((h) => [h, { drv: FIXTURE_DRV, out: FIXTURE_TOPLEVEL }]))) }),
      when(['build'], () => ({ stdout: JSON.stringify([{ drvPath: FIXTURE_DRV, outputs: { out: FIXTURE_TOPLEVEL } }]) })),
      when(['avalanche-probe'], { stdout: 'system-4-link\n/nix/store/old-system\n/nix/store/old-system\n' }),
      when(['avalanche-rollback'], { stdout: 'outcome=restored\nprofile-link=system-4-link\nprofile-path=/nix/store/old-system\ncurrent-system=/nix/store/old-system\n' }),
      (spec) => (spec.argv.includes('nixos-rebuild') && spec.argv.some((a) => a.endsWith(`#${failing}`)) ? { exitCode: 1, stderr: 'activation failed' } : undefined),
    ]);
    const result = await runPlan(plan, { executor, signal: new AbortController().signal, renderer: 'silent', runId: 'r1' });
    const states = Object.fromEntries(result.report.hosts.map((h) => [h.name, h.state]));
    const rebuilt = executor.calls.filter((c) => c.argv.includes('nixos-rebuild')).map((c) => c.argv.find((a) => a.includes('#'))!.split('#')[1]);
    return { plan, result, states, rebuilt };
  } finally {
    await cache.close();
  }
}

describe('the whole fleet: the cache host and this machine last, and only after the others went well', () => {
  it('on hawk: a failed opi leaves hawk (the cache host, this machine) not started; the rest of its wave goes on', async () => {
    const { plan, result, states, rebuilt } = await deployFleet('opi01', { onCoordinator: true, thisMachine: 'hawk' });
    expect(plan.waves).toEqual([['opi03'], ['opi01', 'opi02', 'calypso'], ['hawk']]);
    expect(result.outcome).toBe('failed');
    expect(states).toMatchObject({ opi01: 'rolled-back', opi02: 'deployed', calypso: 'deployed', hawk: 'not-started' });
    expect(rebuilt).not.toContain('hawk');
  });

  it('from calypso: a failed opi leaves hawk and calypso not started', async () => {
    const { plan, states, rebuilt } = await deployFleet('opi02', { onCoordinator: false, thisMachine: 'calypso' });
    expect(plan.waves).toEqual([['opi03'], ['opi01', 'opi02'], ['hawk'], ['calypso']]);
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
