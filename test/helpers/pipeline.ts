/**
 * Runs a whole plan for unit tests: the fleet inventory pointed at a real
 * HTTP test cache that serves the fixture toplevel signed, a recording
 * executor that answers like the fleet, and runPlan with the silent renderer.
 */
import { isDeepStrictEqual } from 'node:util';
import { commandLine } from '../../lib/exec/describe.ts';
import type { CommandSpec } from '../../lib/exec/types.ts';
import type { Inventory } from '../../lib/inventory/schema.ts';
import { planDeploy, type PlanOptions } from '../../lib/plan/assemble.ts';
import { fillCommand, type PlaceholderValues, previousGenerationValues, toplevelDerivationValues, toplevelValues } from '../../lib/plan/placeholders.ts';
import type { DeployPlan, PlannedCommand, RollbackPlan } from '../../lib/plan/types.ts';
import { sshDestination } from '../../lib/remote/host.ts';
import { parseGeneration } from '../../lib/remote/scripts.ts';
import type { RendererChoice, RunPlanOptions, RunResult } from '../../lib/run/run.ts';
import { runPlan } from '../../lib/run/run.ts';
import { FIXTURE_KEY, FIXTURE_TOPLEVEL, fixture, fleetInventory, wholeFleetInventory } from './fixtures.ts';
import { startTestCache } from './http-cache.ts';
import { RecordingExecutor, type Responder, when } from './recording-executor.ts';

export const FLEET_HOSTS = ['opi01', 'opi02', 'opi03'];
/** hosts.json's whole fleet, two systems (wholeFleetInventory). */
export const WHOLE_FLEET_HOSTS = [...FLEET_HOSTS, 'hawk', 'calypso'];

/** `nix eval` gives every one of `hosts` the fixture toplevel. */
function evaluatesTo(hosts: readonly string[]): Responder {
  return when(['eval'], { stdout: JSON.stringify(Object.fromEntries(hosts.map((h) => [h, { drv: FIXTURE_DRV, out: FIXTURE_TOPLEVEL }]))) });
}
export const FIXTURE_DRV = '/nix/store/1vywq121qhh8y6hakaxa5n96fvvznv3k-fixture-toplevel.drv';

/** Whether any of `calls` acted on a target as a deploy does (the probe, the watchdog, the diff, an activation). */
export function touchedTarget(calls: readonly CommandSpec[]): boolean {
  return calls.some((c) => c.argv.some((a) => /nixos-rebuild|switch-to-configuration|avalanche-(probe|arm|closure-diff|activate)/.test(a)));
}

/** Whether `spec` is a seed build of one toplevel (a head start, or a system of one host): the one that builds what the toplevels share. */
export function buildsOneToplevel(spec: CommandSpec): boolean {
  return spec.argv.includes('build') && spec.argv.filter((a) => a.endsWith('^out') || a.endsWith('.drv')).length === 1;
}

/** What Nix's internal-json log says when `spec` (a seed build) begins building the kernel, where its --builders point. */
export function kernelBuildStart(spec: CommandSpec): string[] {
  const machine = spec.argv[spec.argv.indexOf('--builders') + 1]!.split(' ')[0];
  return [`@nix {"action":"start","fields":["/nix/store/vv8yjil9rfc1l65naywzx34q57jbyvhz-linux-6.1-opi.drv","${machine}",1,1],"id":7,"level":3,"text":"","type":105}`];
}

/** What the new toplevel changes against /nix/store/old-system, as lib/nix/closure-diff.ts CLOSURE_DIFF prints it. */
export const CLOSURE_DIFF_ANSWER = `format=avalanche-closure-diff-1\ncurrent-system=/nix/store/old-system\ntoplevel=${FIXTURE_TOPLEVEL}\nclosure-bytes-after=2048\nclosure-bytes-before=1024\ndiff-closures:\nlinux: 6.1.1 → 6.1.2\n`;

/** Every host evaluates and builds to the fixture path (on opi03), and ran system-4 before. */
export const fleetResponders: readonly Responder[] = [
  evaluatesTo(FLEET_HOSTS),
  // Built where --builders points (the seed, or the one preflight failed over to), as Nix reports it. The kernel
  // is built by the build of one toplevel (a head start, or a system of one host); the build of all of them that
  // follows finds it built.
  when(['build'], (spec) => ({
    stdout: JSON.stringify(FLEET_HOSTS.map(() => ({ drvPath: FIXTURE_DRV, outputs: { out: FIXTURE_TOPLEVEL } }))),
    lines: buildsOneToplevel(spec) ? kernelBuildStart(spec) : [],
  })),
  // What each target ran before: its profile link, the profile's path, the running system.
  when(['avalanche-probe'], { stdout: 'system-4-link\n/nix/store/old-system\n/nix/store/old-system\n' }),
  when(['avalanche-closure-diff'], { stdout: CLOSURE_DIFF_ANSWER }),
  // The rollback restores system-4 and reads the generation again.
  when(['avalanche-rollback'], { stdout: 'outcome=restored\nprofile-link=system-4-link\nprofile-path=/nix/store/old-system\ncurrent-system=/nix/store/old-system\n' }),
];

export interface PipelineOptions {
  /** what the cache serves for the fixture toplevel; default: signed by the trusted key */
  readonly narinfo?: string;
  readonly plan?: Partial<PlanOptions>;
  readonly editInventory?: (json: any) => void;
  /** deploy hosts.json's whole fleet (WHOLE_FLEET_HOSTS) instead of the three opis */
  readonly wholeFleet?: boolean;
  readonly signal?: AbortSignal;
  /** listr2's renderer; default silent (`simple` prints what an operator's CI log shows) */
  readonly renderer?: RendererChoice;
  /** --interactive's question */
  readonly confirmActivation?: RunPlanOptions['confirmActivation'];
}

/** `responders` answer first; the fleet's usual answers fill in the rest. */
export async function runPipeline(responders: readonly Responder[], options: PipelineOptions = {}) {
  const cache = await startTestCache({ '/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn.narinfo': options.narinfo ?? fixture('narinfo/signed.narinfo') });
  try {
    const hosts = options.wholeFleet ? WHOLE_FLEET_HOSTS : FLEET_HOSTS;
    const inventory = (options.wholeFleet ? wholeFleetInventory : fleetInventory)((json) => {
      json.cache.url = cache.url;
      json.cache.publicKey = FIXTURE_KEY;
      json.timeouts.cacheWaitSeconds = 1;
      json.health = { systemState: 'skip', retries: 1, intervalSeconds: 0, settleSeconds: 0 };
      options.editInventory?.(json);
    });
    const plan = planDeploy(inventory, hosts, { goal: 'switch', onCoordinator: true, ...options.plan });
    const executor = new RecordingExecutor([...responders, ...(options.wholeFleet ? [evaluatesTo(hosts)] : []), ...fleetResponders]);
    const result = await runPlan(plan, { executor, signal: options.signal ?? new AbortController().signal, renderer: options.renderer ?? 'silent', runId: 'r1', confirmActivation: options.confirmActivation });
    return { result, executor, plan, cacheRequests: [...cache.requests] };
  } finally {
    await cache.close();
  }
}

/** runPipeline with listr2's plain renderer: the run, and everything it printed (stdout and stderr), as an operator's CI log shows it. */
export async function runPipelinePrinted(responders: readonly Responder[], options: PipelineOptions = {}) {
  const written: string[] = [];
  const streams = [process.stdout, process.stderr] as const;
  const writes = streams.map((stream) => stream.write);
  for (const stream of streams) {
    stream.write = ((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    }) as typeof stream.write;
  }
  try {
    const run = await runPipeline(responders, { ...options, renderer: 'simple' });
    return { ...run, output: written.join('') };
  } finally {
    streams.forEach((stream, i) => (stream.write = writes[i]!));
  }
}

/** The fleet's plan (switch, from the coordinator unless `options` say otherwise), for tests of one part of it. */
export function planFleet(options: Partial<PlanOptions> = {}, inventory: Inventory = fleetInventory()): DeployPlan {
  return planDeploy(inventory, FLEET_HOSTS, { goal: 'switch', onCoordinator: true, ...options });
}

/** The plan's deploy lock and where it is: what DeployLock.acquire takes from the plan. */
export function fleetLock(options: { readonly onCoordinator?: boolean; readonly inventory?: Inventory } = {}): Pick<RollbackPlan, 'lock' | 'coordinator'> {
  const { lock, coordinator } = planFleet({ onCoordinator: options.onCoordinator ?? true }, options.inventory);
  return { lock: lock!, coordinator };
}

/** A run: its plan, what the executor recorded, and its result. */
export interface RecordedRun {
  readonly plan: DeployPlan;
  readonly executor: RecordingExecutor;
  readonly result: RunResult;
}

/**
 * What the run knew for the plan's placeholders: its id (`r1`, as
 * runPipeline asks), the ssh control directory it made (read from a
 * ControlPath it ran with) and the toplevels it evaluated (as reported;
 * their derivation is the fixture's, as the fake evaluation gives it).
 */
export function runValues({ executor, result }: Omit<RecordedRun, 'plan'>): Record<string, string> {
  const controlDir = executor.calls
    .flatMap((call) => call.argv)
    .map((arg) => /^ControlPath=(.+)\/%C$/.exec(arg)?.[1])
    .find((dir) => dir !== undefined);
  const toplevels = Object.fromEntries(result.report.hosts.flatMap((h) => (h.toplevel ? [[h.name, h.toplevel]] : [])));
  // Each build's --builders as preflight filled it, by the system its entries name (their second field):
  // the build of all has every builder that answered (the later one), the seed's entry is the first of any.
  const builders = executor.calls.flatMap((call) => {
    const value = call.argv[call.argv.indexOf('--builders') + 1];
    const system = value?.split(' ')[1];
    return call.argv.includes('--builders') && value && system ? [[`builders:${system}`, value], [`seed-builder:${system}`, value.split(' ; ')[0]!]] : [];
  });
  return { 'run-id': 'r1', ...(controlDir ? { 'ssh-control-dir': controlDir } : {}), ...toplevelValues(toplevels), ...toplevelDerivationValues(Object.fromEntries(Object.keys(toplevels).map((h) => [h, FIXTURE_DRV]))), ...Object.fromEntries(builders) };
}

/** A planned command as the run ran it: its placeholders filled with {@link runValues}. */
export function asRun(run: Omit<RecordedRun, 'plan'>, command: PlannedCommand): PlannedCommand {
  return fillCommand(command, runValues(run));
}

/** `command` filled as the run filled it; undefined when the run could not have (a value it never had). */
function asRunWith(command: PlannedCommand, values: PlaceholderValues): PlannedCommand | undefined {
  try {
    return fillCommand(command, values);
  } catch {
    return undefined;
  }
}

/** Whether a recorded command is this planned command, as filled: argv, env and bound. */
export function isCommand(call: CommandSpec, command: PlannedCommand | undefined): boolean {
  return command !== undefined && isDeepStrictEqual(call, command);
}

/**
 * Each deploy step the run ran, in order, as `<host> <step>` (probe, copy, arm,
 * set profile, rebuild, reboot, boot check, health (a round of the command checks), confirm, rollback): every recorded
 * command compared with the hosts' plans, filled as the run filled them
 * (a host's steps with the generation its own probe read). A command that
 * names a target's deploy login but is none of its planned commands is
 * `<host> unplanned: <command line>`, so a test listing the steps sees it;
 * the preflight login and the closing of the reused connection are planned
 * but not deploy steps, and are left out.
 */
export function deployStepsRun(run: RecordedRun): string[] {
  const { plan, executor } = run;
  const values = runValues(run);
  const hosts = Object.values(plan.deploy.hosts).map((host) => {
    const probe = asRunWith(host.probe, values);
    const probed = executor.calls.findIndex((call) => isCommand(call, probe));
    const generation = probed < 0 ? {} : previousGenerationValues(parseGeneration(executor.results[probed]!.stdout));
    const fill = (command: PlannedCommand | undefined) => (command ? asRunWith(command, { ...values, ...generation }) : undefined);
    const steps = ([['probe', host.probe], ['diff', host.diff], ['copy', host.copy], ['arm', host.arm], ['set profile', host.setProfile], ['rebuild', host.rebuild], ['reboot', host.reboot?.command], ['boot check', host.reboot?.poll], ['fresh login', host.freshLogin], ['health', host.health?.round], ['confirm', host.confirm], ['rollback', host.rollback]] as const)
      .map(([step, command]) => [step, fill(command)] as const);
    const notSteps = [plan.preflight.targets.find((t) => t.host === host.name)?.command, host.closeConnection].map(fill);
    return { name: host.name, login: sshDestination(host.target), steps, notSteps };
  });
  return executor.calls.flatMap((call) => {
    for (const host of hosts) {
      const step = host.steps.find(([, command]) => isCommand(call, command));
      if (step) return [`${host.name} ${step[0]}`];
      if (host.notSteps.some((command) => isCommand(call, command))) return [];
    }
    const named = hosts.find((host) => call.argv.includes(host.login));
    return named ? [`${named.name} unplanned: ${commandLine(call)}`] : [];
  });
}
