/**
 * The planner: from the inventory, the selected hosts and the options, the
 * complete plan of a deploy (lib/plan/types.ts) — every command of every
 * stage and host step with its bound, the seed failover order decided up
 * front. Pure: it runs nothing. --dry-run prints what it returns, the stages
 * execute it, and never call it again.
 */
import { userInfo } from 'node:os';
import { posix } from 'node:path';
import { narInfoUrlForHash } from '../cache/client.ts';
import { listRootsArgv, pinRootsArgvs, writableDirArgv } from '../cache/gc-roots.ts';
import { UsageError } from '../errors.ts';
import type { HostName, Inventory } from '../inventory/schema.ts';
import { systemBuilders } from '../inventory/select.ts';
import {
  ACTIVATING_GOALS,
  builderProbeArgv,
  builderSpec,
  coordinatorBuilderSpec,
  copyToArgv,
  directDeployArgvs,
  evaluateToplevelsArgv,
  type Goal,
  nixosRebuildArgv,
  seedBuildArgv,
  sshEnv,
} from '../nix/commands.ts';
import { closureDiffArgv } from '../nix/closure-diff.ts';
import { trustProbeCommands } from '../nix/trust.ts';
import { derivationOutputInstallable, type NixVersion } from '../nix/version.ts';
import { chooseDeployMethod, type DeployMethod, methodProblems, runsNixosRebuild } from '../nix/deploy-method.ts';
import { chooseRebuildFlags, type RebuildFlags, type RebuildTool, unprobedRebuildTool } from '../nix/nixos-rebuild.ts';
import { closeMasterArgv, FRESH_CONNECTION, nixSshStoreUri, type RemoteHost, remoteArgv } from '../remote/host.ts';
import { atPlace, builderHost, type CoordinatorPlace, coordinatorBuilderHost, coordinatorHost, coordinatorPlace, type Here, reachTarget, reusingConnection, shortCommandTimeoutMs, targetHost } from '../remote/fleet.ts';
import { ACQUIRE_LOCK, RELEASE_LOCK, REMOVE_LOCK } from '../remote/lock-scripts.ts';
import { BOOTED_SYSTEM } from '../remote/generations.ts';
import { healthRoundArgv } from '../remote/health-round.ts';
import { armArgs, BOOT_CHECK, CONFIRM, generationProbeArgv, REBOOT, REBOOT_MARKER_DIR, ROLLBACK } from '../remote/scripts.ts';
import { concurrencyFor } from './concurrency.ts';
import { PLACEHOLDER } from './placeholders.ts';
import { type BuilderPlan, type DeployGoal, deployStages, type DeployPlan, type HealthCheckPlan, type HealthPlan, type HostPlan, type PlannedCommand, type RebootPlan, type RollbackPlan, type SystemBuild } from './types.ts';
import { builderSeeds } from './waves.ts';

/** The deploy stage's pace and safety choices, the same for a deploy and a rollback (lib/cli/args.ts deployStageChoices fills them). */
export interface DeployStageChoices {
  /** hosts activated at once; undefined: the default (lib/plan/concurrency.ts) */
  readonly concurrency?: number | undefined;
  /** in waves of batchSize, health-checked, stopping at the first failure */
  readonly rolling?: boolean | undefined;
  readonly batchSize?: number | undefined;
  /** go on with the remaining waves after a failure, and fail at the end */
  readonly keepGoing?: boolean | undefined;
  readonly magicRollback?: boolean | undefined;
  readonly confirmTimeoutSeconds?: number | undefined;
  /** roll a host back when its activation or health checks fail */
  readonly rollback?: boolean | undefined;
  /** one ssh master per target for the run, its socket in the run's `{{ssh-control-dir}}` (default true) */
  readonly reuseConnections?: boolean | undefined;
  /** each host's closure diff before activation (default true); interactive and diffOnly imply it */
  readonly diff?: boolean | undefined;
  /** ask before activating each host, showing its diff */
  readonly interactive?: boolean | undefined;
  /** stop after each host's diff, activating nothing (--dry-run --diff) */
  readonly diffOnly?: boolean | undefined;
  /** goal boot: reboot each host into its new boot default, check it booted it, then the health checks */
  readonly reboot?: boolean | undefined;
}

export interface PlanOptions extends DeployStageChoices {
  /** a nixos-rebuild goal, or `build`: no deploy stage, no target checks, no lock */
  readonly goal: DeployGoal;
  readonly flake?: string | undefined;
  readonly seed?: string | undefined;
  /** whether this process runs on the coordinator (the cache host) */
  readonly onCoordinator: boolean;
  /** accept narinfos that are unsigned or signed by an untrusted key (loudly) */
  readonly allowUnsigned?: boolean | undefined;
  /** the configured nixos-rebuild as probed on this machine; default: not probed (flavour unknown) */
  readonly rebuildTool?: RebuildTool | undefined;
  /** this machine's Nix (`nix --version`), which runs the seed build: how it names a derivation's output; default: a current Nix */
  readonly localNix?: NixVersion | undefined;
  /** this machine's Nix system (e.g. x86_64-linux); default: the coordinator's */
  readonly localSystem?: string | undefined;
  /** the user the deploy runs as here (whose trust in Nix matters); default: this process's */
  readonly localUser?: string | undefined;
  /** the selected host that is this machine (lib/cli/selection.ts thisMachine): activated here, without ssh, last */
  readonly thisMachine?: HostName | undefined;
  /** hosts deployed first, alone, before the others (--canary); default: the seeds with --rolling, none otherwise */
  readonly canaries?: readonly HostName[] | undefined;
}

const MINUTE = 60_000;
/** The cache wait polls at most this far apart (ms). */
const POLL_MAX_MS = 1000;

/**
 * The whole plan. Throws UsageError (exit 2) for a system nothing may build
 * and a --seed that builds none of the selected systems
 * (lib/inventory/select.ts systemBuilders).
 *
 * Goal `build` plans the same preflight (less the targets and nixos-rebuild),
 * evaluation, seed build, pinning and cache wait, and no deploy stage: the
 * hosts are only the toplevels to build. Its preflight asks what a build
 * needs — the seed answers as builder, this machine's Nix trusts the user
 * (else --builders is ignored), the GC root directory is writable on the
 * coordinator, the cache answers and signs with cache.publicKey — and not
 * the targets' ssh and sudo: a prebuild must work while a target is down.
 * It takes no deploy lock: it changes no host, a Nix daemon builds a
 * derivation once however many clients ask, and pinning (`ln -sf`) is
 * idempotent, so a prebuild (in CI, on every push) neither waits for a
 * running deploy nor makes one fail on the lock.
 */
export function planDeploy(inventory: Inventory, hosts: readonly HostName[], options: PlanOptions): DeployPlan {
  const flake = options.flake ?? inventory.flake;
  const t = inventory.timeouts;
  const shortMs = shortCommandTimeoutMs(inventory);
  const coordinator = coordinatorPlace(inventory, options.onCoordinator);
  const coordinatorEnv = sshEnv(coordinatorHost(inventory));
  const goal = options.goal;
  // A build touches no target: none is checked, locked for or deployed (its deploy stage has no hosts and is not in `stages`).
  const deploys = goal !== 'build';
  const deployed = deploys ? hosts : [];
  // Never used to activate (no host is deployed); it only settles the empty stage's watchdog flag (off).
  const rebuildGoal: Goal = goal === 'build' ? 'dry-activate' : goal;
  const localUser = options.localUser ?? userInfo().username;
  const thisMachine = options.thisMachine !== undefined && deployed.includes(options.thisMachine) ? options.thisMachine : undefined;
  const targets = planTargets(inventory, deployed, options.reuseConnections ?? true, thisMachine === undefined ? undefined : { name: thisMachine, user: localUser });
  const builds = planBuilds(inventory, hosts, options);

  const rolling = options.rolling ?? false;
  const batchSize = Math.max(1, options.batchSize ?? 1);
  // The cache host and this machine last. A canary wave only where it buys something: asked for (--canary), or a
  // rolling deploy's seeds (a canary for what their build made); otherwise every other host at once, none waiting.
  const last = [inventory.coordinator.name, ...(thisMachine === undefined ? [] : [thisMachine])];
  const canaries = deploys ? planCanaries(options.canaries, deployed, last, rolling ? builderSeeds(builds) : []) : [];
  const waves = planWaves(deployed, { first: canaries, last, rolling, batchSize });

  const rebuildTool = options.rebuildTool ?? unprobedRebuildTool(inventory.nixosRebuild.command);
  const { flags, problems } = planRebuildFlags(inventory, targets, rebuildTool, options.localSystem ?? inventory.coordinator.system);
  // A build deploys nothing: no method. The direct method runs no nixos-rebuild, so preflight does not ask for it.
  const deployMethod = deploys ? chooseDeployMethod(rebuildTool, inventory.deploy?.method) : undefined;
  const { gcRootDir } = inventory.cache;
  const roots = hosts.map((host) => ({ host, storePath: PLACEHOLDER.toplevel(host), root: posix.join(gcRootDir, PLACEHOLDER.toplevelName(host)) }));
  const onCoordinator = (argv: readonly string[]): PlannedCommand => ({ argv: atPlace(coordinator, argv), timeoutMs: shortMs });

  return {
    operation: 'deploy',
    goal,
    stages: deployStages(goal),
    flake,
    hosts: [...hosts],
    coordinator: { name: inventory.coordinator.name, place: coordinator },
    baselineMinutes: inventory.baselineMinutes,
    ...(deploys ? { lock: planLock(inventory, coordinator) } : {}),
    preflight: {
      targets: planTargetChecks(deployed, targets, shortMs),
      nixTrust: { user: localUser, ...trustProbeCommands(localUser, t.connectSeconds * 1000) },
      ...(deployMethod && runsNixosRebuild(deployMethod)
        ? { rebuild: { tool: rebuildTool, problems: [...problems, ...methodProblems(deployMethod, inventory.nixosRebuild.extraArgs)] } }
        : {}),
      gcRootDir,
      gcRootDirWritable: onCoordinator(writableDirArgv(gcRootDir)),
      cacheKey: { publicKey: inventory.cache.publicKey, listRoots: onCoordinator(listRootsArgv(gcRootDir)) },
      cacheUrl: inventory.cache.url,
      requestTimeoutMs: t.connectSeconds * 1000,
    },
    evaluate: evaluationGroups(builds).map((group) => ({ hosts: group, command: { argv: evaluateToplevelsArgv(inventory, flake, group), env: coordinatorEnv, timeoutMs: 10 * MINUTE } })),
    builds,
    waves,
    ...(options.onCoordinator
      ? {}
      : { copyToCoordinator: { argv: copyToArgv(coordinatorHost(inventory), roots.map((r) => r.storePath)), env: coordinatorEnv, timeoutMs: t.buildMinutes * MINUTE } }),
    pin: { commands: pinRootsArgvs(gcRootDir, roots).map(onCoordinator), roots },
    waitForCache: {
      cacheUrl: inventory.cache.url,
      publicKey: inventory.cache.publicKey,
      narinfos: hosts.map((host) => ({ host, storePath: PLACEHOLDER.toplevel(host), url: narInfoUrlForHash(inventory.cache.url, PLACEHOLDER.toplevelHash(host)) })),
      pollMaxMs: POLL_MAX_MS,
      timeoutMs: t.cacheWaitSeconds * 1000,
      requestTimeoutMs: t.connectSeconds * 1000,
      allowUnsigned: options.allowUnsigned ?? false,
    },
    ...(deployMethod ? { deployMethod } : {}),
    deploy: planDeployStage(inventory, deployed, targets, {
      ...options,
      goal: rebuildGoal,
      concurrency: rolling ? batchSize : concurrencyFor(Math.max(1, ...waves.map((w) => w.length)), options.concurrency),
      canaries,
      ...planDeployMethodSteps(inventory, flake, rebuildGoal, deployMethod, flags),
    }),
  };
}

/**
 * Each host's activation for the run's deploy method, and the direct
 * method's steps before it: nixos-rebuild with the built toplevel
 * (`{{toplevel:<host>}}`, filled after evaluation) or with the flake; or the
 * copy, profile and activation commands the orchestrator runs itself.
 */
function planDeployMethodSteps(
  inventory: Inventory,
  flake: string,
  goal: Goal,
  method: DeployMethod | undefined,
  flags: Readonly<Record<HostName, RebuildFlags>>,
): Pick<DeployStageOptions, 'activate' | 'prepare'> {
  const t = inventory.timeouts;
  const deployMs = t.deployMinutes * MINUTE;
  if (method?.kind === 'direct') {
    const steps = (host: HostName, target: RemoteHost) => directDeployArgvs(target, PLACEHOLDER.toplevel(host), goal, inventory.paths.profile);
    return {
      activate: (host, target) => ({ argv: steps(host, target).activate, timeoutMs: deployMs }),
      prepare: (host, target) => {
        const { copy, setProfile } = steps(host, target);
        return {
          // Bounded like the activation: it may download the whole closure.
          ...(copy ? { copy: { argv: copy, env: sshEnv(target), timeoutMs: deployMs } } : {}),
          ...(setProfile ? { setProfile: { argv: setProfile, timeoutMs: shortCommandTimeoutMs(inventory) } } : {}),
        };
      },
    };
  }
  return {
    activate: (host, target) => ({
      argv: nixosRebuildArgv(inventory.nixosRebuild.command, method?.kind === 'store-path' ? { storePath: PLACEHOLDER.toplevel(host) } : { flake, host }, target, goal, flags[host]!),
      env: sshEnv(target),
      timeoutMs: deployMs,
    }),
  };
}

/**
 * Each system's seed build: on that system's builders (the preferred seed
 * first; the coordinator over ssh when the run is elsewhere and it builds its
 * own system), or here on the coordinator.
 */
function planBuilds(inventory: Inventory, hosts: readonly HostName[], options: PlanOptions): SystemBuild[] {
  const t = inventory.timeouts;
  const shortMs = shortCommandTimeoutMs(inventory);
  // One ssh connection per builder for the run: each of Nix's remote builds (a build hook process and an ssh of
  // its own for every derivation) goes over it (NIX_SSHOPTS; not under a Nix daemon, which makes its own
  // connections). Preflight's login opens it, unless Nix must check the builder's pinned host key (the
  // --builders entry's, which Nix's ssh gets after NIX_SSHOPTS: it counts only when the inventory's options set
  // no UserKnownHostsFile): then the first build's ssh opens it, checked. Either way closed once the builds
  // ended (lib/stages/context.ts closeConnections).
  const controlDir = (options.reuseConnections ?? true) ? PLACEHOLDER.sshControlDir : undefined;
  const env = sshEnv(reusingConnection(coordinatorHost(inventory), controlDir));
  const ownKnownHosts = inventory.ssh.options.some((o) => /^(-o)?userknownhostsfile[=\s]/i.test(o));
  const builderPlan = (host: HostName, builder: RemoteHost, spec: string, hostKey: string | undefined): BuilderPlan => {
    const reached = reusingConnection(builder, controlDir);
    const login = hostKey !== undefined && !ownKnownHosts ? builder : reached;
    return {
      host,
      check: { argv: builderProbeArgv(login), timeoutMs: shortMs },
      uri: nixSshStoreUri(builder),
      spec,
      ...(controlDir ? { closeConnection: { argv: closeMasterArgv(reached), timeoutMs: shortMs } } : {}),
    };
  };
  // The derivations the evaluate stage instantiated: built as they are, the flake is evaluated once per run.
  const toplevelDrvs = (of: readonly HostName[]) => of.map((host) => derivationOutputInstallable(PLACEHOLDER.toplevelDrv(host), 'out', options.localNix));
  return systemBuilders(inventory, hosts, options.seed).map(({ system, hosts: of, builders: names }): SystemBuild => {
    const timeoutMs = t.buildMinutes * MINUTE;
    // The first host's toplevel, built while the others are evaluated (a system of one host has no head start);
    // the build of the others then need not wait for that toplevel, only for what it shares with them.
    const headStart = (placement: Parameters<typeof seedBuildArgv>[1]) =>
      of.length > 1 ? { headStart: { hosts: [of[0]!], build: { argv: seedBuildArgv(toplevelDrvs([of[0]!]), placement), env, timeoutMs } } } : {};
    const rest = of.length > 1 ? of.slice(1) : of;
    if (names.length === 0 && options.onCoordinator) {
      return { system, hosts: [...of], on: 'here', builders: [], ...headStart('here'), build: { argv: seedBuildArgv(toplevelDrvs(rest), 'here'), env, timeoutMs } };
    }
    const builders: BuilderPlan[] = names.length
      ? names.map((name) => {
          const builder = builderHost(inventory, name)!;
          return builderPlan(name, builder, builderSpec(inventory, name, builder), inventory.hosts[name]!.builder?.hostKey);
        })
      : [(() => {
          const builder = coordinatorBuilderHost(inventory);
          return builderPlan(inventory.coordinator.name, builder, coordinatorBuilderSpec(inventory, builder), inventory.coordinator.builder?.hostKey);
        })()];
    // The head start on the seed alone (it starts once the seed answered, before the other builders have);
    // the other toplevels on every builder that answered.
    return {
      system, hosts: [...of], on: 'builders', builders,
      ...headStart({ builders: PLACEHOLDER.seedBuilder(system) }),
      build: { argv: seedBuildArgv(toplevelDrvs(rest), { builders: PLACEHOLDER.builders(system) }), env, timeoutMs },
    };
  });
}

/**
 * The hosts of each evaluation: each system's first host together, then
 * every other host (none left out, none twice; an empty group dropped). The
 * first group is small so that the seed builds' head starts wait for one
 * evaluation per system, not for all of them. They run one after the other
 * (lib/stages/evaluate.ts): the first has the machine to itself, and the
 * coordinator's memory is bounded by one evaluator, not the fleet.
 */
export function evaluationGroups(builds: readonly SystemBuild[]): HostName[][] {
  const first = builds.map((b) => b.hosts[0]!);
  const rest = builds.flatMap((b) => b.hosts.slice(1));
  return [first, rest].filter((group) => group.length > 0);
}

/** The fleet's deploy lock on the coordinator: every run that changes hosts holds it. */
export function planLock(inventory: Inventory, coordinator: CoordinatorPlace): RollbackPlan['lock'] {
  const t = inventory.timeouts;
  const lockCommand = (script: string, args: readonly string[]): PlannedCommand => ({
    argv: atPlace(coordinator, ['sh', '-c', script, 'avalanche-lock', inventory.paths.lock, ...args]),
    timeoutMs: shortCommandTimeoutMs(inventory),
  });
  return {
    path: inventory.paths.lock,
    acquire: lockCommand(ACQUIRE_LOCK, [PLACEHOLDER.lockHolder]),
    release: lockCommand(RELEASE_LOCK, [PLACEHOLDER.lockHolderId]),
    remove: lockCommand(REMOVE_LOCK, []),
    maxAgeMs: (t.buildMinutes + t.deployMinutes + 60) * MINUTE,
  };
}

/** A non-root deploy user must get root without a password (sudo -n), as every root step will: checked before anything changes. */
export function planTargetChecks(hosts: readonly HostName[], targets: Readonly<Record<HostName, RemoteHost>>, shortMs: number): DeployPlan['preflight']['targets'] {
  return hosts.map((host) => ({
    host,
    command: { argv: remoteArgv(targets[host]!, ['true'], { asRoot: true }), timeoutMs: shortMs },
    escalates: targets[host]!.escalation === 'sudo',
    ...(targets[host]!.local ? { local: true } : {}),
  }));
}

/**
 * Each target as its deploy user, reusing one connection per target for the
 * run unless `reuse` is false; `here`: the target that is this machine, as
 * the orchestrator's user, without ssh (lib/remote/fleet.ts reachTarget).
 */
export function planTargets(inventory: Inventory, hosts: readonly HostName[], reuse: boolean, here?: Here): Record<HostName, RemoteHost> {
  return Object.fromEntries(hosts.map((host) => [host, reachTarget(inventory, host, here, reuse ? PLACEHOLDER.sshControlDir : undefined)]));
}

/** How the deploy stage runs: pace and safety choices, and the command that activates a host's new generation. */
export interface DeployStageOptions extends Omit<DeployStageChoices, 'concurrency' | 'batchSize'> {
  readonly goal: Goal;
  /** hosts activated at once, decided (rolling: the batch size) */
  readonly concurrency: number;
  /** the first wave's hosts when it is a canary wave (default none) */
  readonly canaries?: readonly HostName[] | undefined;
  /** nixos-rebuild or the direct method's activation for a deploy; the switch to an existing generation for a rollback */
  readonly activate: (host: HostName, target: RemoteHost) => PlannedCommand;
  /** the direct deploy method's steps before the activation: the copy, the profile */
  readonly prepare?: ((host: HostName, target: RemoteHost) => Pick<HostPlan, 'copy' | 'setProfile'>) | undefined;
}

/** The deploy stage: every host's steps around `activate` (probe, watchdog, health checks, confirmation, rollback). */
export function planDeployStage(inventory: Inventory, hosts: readonly HostName[], targets: Readonly<Record<HostName, RemoteHost>>, o: DeployStageOptions): RollbackPlan['deploy'] {
  const magicRollback = (o.magicRollback ?? true) && ACTIVATING_GOALS.includes(o.goal);
  const rollback = o.rollback ?? true;
  const confirmTimeoutSeconds = o.confirmTimeoutSeconds ?? defaultConfirmSeconds(inventory);
  const diffOnly = o.diffOnly ?? false;
  const interactive = o.interactive ?? false;
  const diff = (o.diff ?? true) || diffOnly || interactive;
  const reboot = o.reboot ?? false;
  if (reboot && o.goal !== 'boot') throw new UsageError(`--reboot goes with --goal boot (got ${o.goal}): it boots the new boot default`);
  const here = hosts.find((h) => targets[h]!.local);
  if (reboot && here !== undefined) {
    throw new UsageError(
      `--reboot: ${here} is the machine this run is on, which cannot reboot and wait for itself; ` +
        `--exclude ${here} (deploy it with --goal boot and reboot it yourself), or run the deploy from another machine`,
    );
  }
  const context = { goal: o.goal, magicRollback, rollback, confirmTimeoutSeconds, reuse: o.reuseConnections ?? true, shortMs: shortCommandTimeoutMs(inventory), diff, reboot };
  return {
    interactive,
    diffOnly,
    concurrency: o.concurrency,
    canaries: [...(o.canaries ?? [])],
    rolling: o.rolling ?? false,
    keepGoing: o.keepGoing ?? false,
    rollback,
    magicRollback,
    confirmTimeoutSeconds,
    hosts: Object.fromEntries(
      hosts.map((host) => [host, planHost(inventory, host, targets[host]!, { ...context, activate: o.activate(host, targets[host]!), prepare: o.prepare?.(host, targets[host]!) ?? {} })]),
    ),
  };
}

interface HostPlanContext {
  readonly goal: Goal;
  readonly activate: PlannedCommand;
  readonly prepare: Pick<HostPlan, 'copy' | 'setProfile'>;
  readonly magicRollback: boolean;
  readonly rollback: boolean;
  readonly confirmTimeoutSeconds: number;
  readonly reuse: boolean;
  readonly shortMs: number;
  readonly diff: boolean;
  readonly reboot: boolean;
}

/** One target's steps (lib/remote/scripts.ts holds the scripts; every value reaches them as an argument). */
function planHost(inventory: Inventory, host: HostName, target: RemoteHost, c: HostPlanContext): HostPlan {
  const { profile, currentSystem, targetState } = inventory.paths;
  const canary = `${targetState}/canary-${PLACEHOLDER.runId}`;
  const marker = `${targetState}/rollbacks.log`;
  const previous = [profile, currentSystem, PLACEHOLDER.previousProfileLink, PLACEHOLDER.previousSystem, c.goal, marker, canary];
  const deployMs = inventory.timeouts.deployMinutes * MINUTE;
  // Bounded: the watchdog gives up waiting for an activation after the deploy timeout.
  const armSeconds = String(Math.ceil(inventory.timeouts.deployMinutes * 60));
  const asRoot = (argv: readonly string[], timeoutMs: number, extraOptions?: readonly string[]) => ({
    argv: remoteArgv(target, argv, { asRoot: true, extraOptions }),
    timeoutMs,
  });
  const activates = ACTIVATING_GOALS.includes(c.goal);
  // The direct method's profile is set by the arm step, right after the watchdog: one round trip, the same order.
  const armSetsProfile = c.magicRollback && c.prepare.setProfile !== undefined;
  const thenSetProfile = armSetsProfile ? { profile, toplevel: PLACEHOLDER.toplevel(host) } : undefined;
  return {
    name: host,
    system: inventory.hosts[host]!.system,
    target,
    probe: { argv: generationProbeArgv(target, inventory.paths), timeoutMs: c.shortMs },
    // Bounded like the activation: it may download the new closure (which the activation then finds in place).
    ...(c.diff ? { diff: { argv: closureDiffArgv(target, { current: PLACEHOLDER.previousSystem, toplevel: PLACEHOLDER.toplevel(host) }), timeoutMs: deployMs } } : {}),
    ...(c.prepare.copy ? { copy: c.prepare.copy } : {}),
    ...(c.magicRollback ? { arm: asRoot(armArgs([...previous, String(c.confirmTimeoutSeconds), armSeconds], thenSetProfile), c.shortMs) } : {}),
    ...(armSetsProfile ? { armSetsProfile: true as const } : c.prepare.setProfile ? { setProfile: c.prepare.setProfile } : {}),
    rebuild: c.activate,
    ...(c.reboot ? { reboot: planReboot(inventory, host, target, c.shortMs) } : {}),
    ...(activates || c.reboot ? { health: planHealth(inventory, host, target) } : {}),
    // Over a new connection: a path that only a multiplexed master still holds does not let the confirmation through.
    ...(c.magicRollback && !target.local ? { freshLogin: asRoot(['true'], c.shortMs, FRESH_CONNECTION) } : {}),
    ...(c.magicRollback ? { confirm: asRoot(['sh', '-c', CONFIRM, 'avalanche-confirm', canary, marker, profile, currentSystem], c.shortMs) } : {}),
    ...(c.rollback && c.goal !== 'dry-activate' ? { rollback: asRoot(['sh', '-c', ROLLBACK, 'avalanche-rollback', ...previous], deployMs) } : {}),
    ...(c.reuse && !target.local ? { closeConnection: { argv: closeMasterArgv(target), timeoutMs: c.shortMs } } : {}),
  };
}

/** How often a rebooting host is asked whether it is back (ms). */
const REBOOT_POLL_MS = 2000;

/**
 * The reboot into the new boot default: the marker and the reboot as root
 * (over the run's connection, which dies with the host), then the boot
 * check over a new connection each time, until the marker is gone.
 */
function planReboot(inventory: Inventory, host: HostName, target: RemoteHost, shortMs: number): RebootPlan {
  const marker = posix.join(REBOOT_MARKER_DIR, `reboot-${PLACEHOLDER.runId}`);
  return {
    command: { argv: remoteArgv(target, ['sh', '-c', REBOOT, 'avalanche-reboot', marker], { asRoot: true }), timeoutMs: shortMs },
    marker,
    poll: {
      argv: remoteArgv(target, ['sh', '-c', BOOT_CHECK, 'avalanche-boot-check', marker, BOOTED_SYSTEM, inventory.paths.currentSystem], { extraOptions: FRESH_CONNECTION }),
      timeoutMs: shortMs,
    },
    pollIntervalMs: REBOOT_POLL_MS,
    waitMs: inventory.timeouts.rebootSeconds * 1000,
    bootedSystem: BOOTED_SYSTEM,
    expectBooted: PLACEHOLDER.toplevel(host),
  };
}

/**
 * The inventory-wide health checks plus the host's own, in the order a
 * failure is told (ssh, system state, units, commands, HTTP), and the round
 * that runs the command checks in one ssh session, within the checks'
 * timeout as a whole.
 */
function planHealth(inventory: Inventory, host: HostName, target: RemoteHost): HealthPlan {
  const defaults = inventory.health;
  const own = inventory.hosts[host]!.health;
  // This machine answers without ssh: nothing to check there.
  const checks: HealthCheckPlan[] = target.local ? [] : [{ kind: 'command', name: 'ssh answers', argv: ['true'] }];
  const systemState = own?.systemState ?? defaults.systemState ?? 'running-or-degraded';
  if (systemState !== 'skip') {
    const accepted = systemState === 'running' ? ['running'] : ['running', 'degraded'];
    // is-system-running exits non-zero for "degraded": judged by what it prints.
    checks.push({ kind: 'command', name: `system state is ${accepted.join(' or ')}`, argv: ['systemctl', 'is-system-running'], stdoutOneOf: accepted });
  }
  const units = [...defaults.units, ...(own?.units ?? [])];
  if (units.length) checks.push({ kind: 'command', name: `units active: ${units.join(', ')}`, argv: ['systemctl', 'is-active', '--', ...units] });
  for (const argv of [...defaults.commands, ...(own?.commands ?? [])]) {
    checks.push({ kind: 'command', name: `command: ${argv.join(' ')}`, argv });
  }
  const timeoutMs = defaults.timeoutSeconds * 1000;
  for (const { url, status } of [...defaults.http, ...(own?.http ?? [])]) {
    checks.push({ kind: 'http', name: `GET ${url} answers ${status}`, url, status, timeoutMs });
  }
  const onTarget = checks.flatMap((check) => (check.kind === 'command' ? [check.argv] : []));
  const round = onTarget.length ? { argv: healthRoundArgv(target, onTarget), timeoutMs } : undefined;
  return { checks, ...(round ? { round } : {}), retries: defaults.retries, intervalMs: defaults.intervalSeconds * 1000, settleMs: defaults.settleSeconds * 1000 };
}

/**
 * Each target's nixos-rebuild flags for `tool` run on a machine of
 * `localSystem` (the sudo flag where the target escalates, the no-re-exec
 * flag), and every problem that would make one fail (the deploy's preflight
 * and the doctor report the same ones).
 */
export function planRebuildFlags(
  inventory: Inventory,
  targets: Readonly<Record<HostName, RemoteHost>>,
  tool: RebuildTool,
  localSystem: string,
): { readonly flags: Readonly<Record<HostName, RebuildFlags>>; readonly problems: readonly string[] } {
  const flags = Object.fromEntries(
    Object.entries(targets).map(([host, target]) => {
      const needsSudo = target.escalation === 'sudo';
      return [host, chooseRebuildFlags(tool, { needsSudo, crossSystem: inventory.hosts[host]!.system !== localSystem }, inventory.nixosRebuild)];
    }),
  );
  return { flags, problems: [...new Set(Object.values(flags).flatMap((f) => f.problems))] };
}

/**
 * How long the watchdog waits for the confirmation by default (seconds,
 * counted from the end of the activation): 30, or longer when a health check
 * that passes only on its last retry and the settle window may take longer —
 * a healthy host must never be rolled back because its checks were slow.
 */
export function defaultConfirmSeconds(inventory: Inventory): number {
  const { retries, timeoutSeconds, intervalSeconds, settleSeconds } = inventory.health;
  return Math.max(30, Math.ceil(settleSeconds + (retries + 1) * (timeoutSeconds + intervalSeconds) + 10));
}

/**
 * The deploy stage's waves: `first` alone (the canaries), the others at once or
 * in batches of `batchSize` when `rolling`, then each of `last` alone, in
 * order (the cache host, whose switch could stop it serving the others'
 * closures; this machine, whose switch could cut off the rest); empty waves
 * left out.
 */
export function planWaves(
  hosts: readonly HostName[],
  o: { readonly first?: readonly HostName[]; readonly last?: readonly HostName[]; readonly rolling: boolean; readonly batchSize: number },
): HostName[][] {
  const last = [...new Set(o.last ?? [])].filter((h) => hosts.includes(h));
  const first = (o.first ?? []).filter((h) => hosts.includes(h) && !last.includes(h));
  const rest = hosts.filter((h) => !first.includes(h) && !last.includes(h));
  return [first, ...(o.rolling ? chunk(rest, o.batchSize) : [rest]), ...last.map((h) => [h])].filter((w) => w.length > 0);
}

/**
 * The canary wave: the hosts asked for, else `fallback` (the seeds of a
 * rolling deploy) among the deployed hosts. Throws UsageError for a canary
 * that is not deployed, or one that goes last anyway (the cache host, this
 * machine).
 */
export function planCanaries(asked: readonly HostName[] | undefined, deployed: readonly HostName[], last: readonly HostName[], fallback: readonly HostName[]): HostName[] {
  if (!asked?.length) return fallback.filter((h) => deployed.includes(h) && !last.includes(h));
  for (const host of asked) {
    if (!deployed.includes(host)) throw new UsageError(`--canary ${host}: not one of the hosts deployed (${deployed.join(', ')})`);
    if (last.includes(host)) throw new UsageError(`--canary ${host}: the cache host and the machine the run is on go last, alone, after every other host; name another canary`);
  }
  return [...new Set(asked)];
}

/** `items` in consecutive groups of `size` (the last may be smaller): a rollout's waves. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}
