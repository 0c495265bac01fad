/**
 * Runs a whole plan for unit tests: the fleet inventory pointed at a real
 * HTTP test cache that serves the fixture toplevel signed, a recording
 * executor that answers like the fleet, and runPlan with the silent renderer.
 */
import type { PlanOptions } from '../../lib/plan.ts';
import { planDeploy } from '../../lib/plan.ts';
import { runPlan } from '../../lib/run.ts';
import { FIXTURE_KEY, FIXTURE_TOPLEVEL, fixture, fleetInventory } from './fixtures.ts';
import { startTestCache } from './http-cache.ts';
import { RecordingExecutor, type Responder, when } from './recording-executor.ts';

export const FLEET_HOSTS = ['opi01', 'opi02', 'opi03'];
export const FIXTURE_DRV = '/nix/store/1vywq121qhh8y6hakaxa5n96fvvznv3k-fixture-toplevel.drv';

/** Every host evaluates and builds to the fixture path (on opi03), and ran system-4 before. */
export const fleetResponders: readonly Responder[] = [
  when(['eval'], { stdout: JSON.stringify(Object.fromEntries(FLEET_HOSTS.map((h) => [h, { drv: FIXTURE_DRV, out: FIXTURE_TOPLEVEL }]))) }),
  // Built where --builders points (the seed, or the one preflight failed over to), as Nix reports it.
  when(['build'], (spec) => ({
    stdout: JSON.stringify(FLEET_HOSTS.map(() => ({ drvPath: FIXTURE_DRV, outputs: { out: FIXTURE_TOPLEVEL } }))),
    lines: [
      `@nix {"action":"start","fields":["/nix/store/vv8yjil9rfc1l65naywzx34q57jbyvhz-linux-6.1-opi.drv","${spec.argv[spec.argv.indexOf('--builders') + 1]!.split(' ')[0]}",1,1],"id":7,"level":3,"text":"","type":105}`,
    ],
  })),
  // What each target ran before: its profile link, the profile's path, the running system.
  when(['avalanche-probe'], { stdout: 'system-4-link\n/nix/store/old-system\n/nix/store/old-system\n' }),
  // The rollback restores system-4 and reads the generation again.
  when(['avalanche-rollback'], { stdout: 'outcome=restored\nprofile-link=system-4-link\nprofile-path=/nix/store/old-system\ncurrent-system=/nix/store/old-system\n' }),
];

export interface PipelineOptions {
  /** what the cache serves for the fixture toplevel; default: signed by the trusted key */
  readonly narinfo?: string;
  readonly plan?: Partial<PlanOptions>;
  readonly editInventory?: (json: any) => void;
  readonly signal?: AbortSignal;
}

/** `responders` answer first; the fleet's usual answers fill in the rest. */
export async function runPipeline(responders: readonly Responder[], options: PipelineOptions = {}) {
  const cache = await startTestCache({ '/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn.narinfo': options.narinfo ?? fixture('narinfo/signed.narinfo') });
  try {
    const inventory = fleetInventory((json) => {
      json.cache.url = cache.url;
      json.cache.publicKey = FIXTURE_KEY;
      json.timeouts.cacheWaitSeconds = 1;
      json.health = { systemState: 'skip', retries: 1, intervalSeconds: 0, settleSeconds: 0 };
      options.editInventory?.(json);
    });
    const plan = planDeploy(inventory, FLEET_HOSTS, { goal: 'switch', onCoordinator: true, runId: 'r1', ...options.plan });
    const executor = new RecordingExecutor([...responders, ...fleetResponders]);
    const result = await runPlan(plan, { executor, signal: options.signal ?? new AbortController().signal, renderer: 'silent' });
    return { result, executor, cacheRequests: [...cache.requests] };
  } finally {
    await cache.close();
  }
}
