/**
 * Pure planning: from the inventory, the selection and the options, what a
 * deploy will run, stage by stage. --dry-run prints this plan, the stages
 * execute it, and the unit tests assert on it.
 */
import { listRootsArgv, pinRootsArgvs, rootPath, writableDirArgv } from './cache/gc-roots.ts';
import type { HostName, Inventory } from './inventory/schema.ts';
import { chooseSeed, seedCandidates } from './inventory/select.ts';
import {
  copyToCoordinatorArgv,
  evaluateToplevelsArgv,
  type Goal,
  nixosRebuildArgv,
  nixosRebuildEnv,
  seedBuildArgv,
} from './nix/commands.ts';
import { chooseRebuildFlags, type RebuildFlags, type RebuildTool, unprobedRebuildTool } from './nix/nixos-rebuild.ts';
import { type HostSteps, hostSteps } from './rollout/host-steps.ts';
import {
  builderTarget,
  closeMasterArgv,
  coordinatorTarget,
  deployTarget,
  destination,
  nixSshOpts,
  onCoordinatorArgv,
  sshArgv,
  withConnectionReuse,
  asRoot,
} from './ssh.ts';

export const STAGES = ['preflight', 'evaluate', 'seed-build', 'wait-for-cache', 'deploy', 'report'] as const;
export type StageName = (typeof STAGES)[number];

export interface PlannedCommand {
  readonly argv: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
}

export interface PlanOptions {
  readonly goal: Goal;
  readonly flake?: string | undefined;
  readonly seed?: string | undefined;
  /** parallel deploys after the seed; undefined: all at once */
  readonly concurrency?: number | undefined;
  /** whether this process runs on the coordinator (the cache host) */
  readonly onCoordinator: boolean;
  /** deploy in waves of batchSize, health-checked, stopping at the first failure */
  readonly rolling?: boolean | undefined;
  readonly batchSize?: number | undefined;
  /** deploy the remaining hosts after a failure, and fail at the end */
  readonly keepGoing?: boolean | undefined;
  readonly magicRollback?: boolean | undefined;
  readonly confirmTimeoutSeconds?: number | undefined;
  /** roll a host back when its activation or health checks fail */
  readonly rollback?: boolean | undefined;
  /** names this run's canaries on the targets */
  readonly runId?: string | undefined;
  /** a private directory for ssh control sockets: reuse one connection per target */
  readonly sshControlDir?: string | undefined;
  /** accept narinfos that are unsigned or signed by an untrusted key (loudly) */
  readonly allowUnsigned?: boolean | undefined;
  /** the configured nixos-rebuild as probed on this machine; default: not probed (flavour unknown) */
  readonly rebuildTool?: RebuildTool | undefined;
  /** this machine's Nix system (e.g. x86_64-linux); default: the coordinator's when on it */
  readonly localSystem?: string | undefined;
}

export interface DeployPlan {
  readonly inventory: Inventory;
  /** the inventory as used for deploy targets: with connection reuse when the run has a control dir */
  readonly targetInventory: Inventory;
  readonly options: PlanOptions;
  readonly hosts: readonly HostName[];
  readonly seed: HostName;
  readonly goal: Goal;
  readonly flake: string;
  readonly onCoordinator: boolean;
  readonly preflight: {
    /** the seed (as builder) and every selected host (as deploy target) */
    readonly ssh: readonly { readonly host: HostName; readonly role: 'builder' | 'target'; readonly command: PlannedCommand; readonly escalates?: boolean }[];
    /** builders of the same system, in order of preference, should the seed not answer */
    readonly seedFallbacks: readonly { readonly host: HostName; readonly command: PlannedCommand }[];
    readonly cacheUrl: string;
    readonly requestTimeoutMs: number;
    /**
     * The cache must sign with cache.publicKey: checked before the build on
     * the newest paths pinned on the cache host (Harmonia serves its store).
     */
    readonly cacheKey: {
      readonly publicKey: string;
      /** the GC-root listing on the cache host, whose newest roots are asked for */
      readonly listRoots: PlannedCommand;
    };
    /** the seed build pins into cache.gcRootDir on the cache host: it must be writable there before building */
    readonly gcRootDirWritable: PlannedCommand;
  };
  /** the nixos-rebuild that will run, and what cannot work with it (preflight fails on those) */
  readonly rebuild: { readonly tool: RebuildTool; readonly problems: readonly string[] };
  readonly evaluate: PlannedCommand;
  readonly seedBuild: PlannedCommand;
  readonly waitForCache: {
    readonly cacheUrl: string;
    readonly timeoutMs: number;
    readonly requestTimeoutMs: number;
    readonly allowUnsigned: boolean;
  };
  readonly deploy: {
    /** the seed alone first (when selected), then the rest: at once, or in batches when rolling */
    readonly waves: readonly (readonly HostName[])[];
    readonly concurrency: number;
    readonly rolling: boolean;
    readonly keepGoing: boolean;
    readonly rollback: boolean;
    /** armed for goals that activate (switch, test) */
    readonly magicRollback: boolean;
    readonly confirmTimeoutSeconds: number;
    readonly commands: Readonly<Record<HostName, PlannedCommand>>;
    readonly steps: Readonly<Record<HostName, HostSteps>>;
    /** closes the reused connections at the end of the run */
    readonly closeConnections: readonly PlannedCommand[];
  };
}

const MINUTE = 60_000;

export function planDeploy(inventory: Inventory, hosts: readonly HostName[], options: PlanOptions): DeployPlan {
  const seed = chooseSeed(inventory, hosts, options.seed);
  const flake = options.flake ?? inventory.flake;
  const t = inventory.timeouts;
  const nixEnv = { NIX_SSHOPTS: nixSshOpts(inventory) };
  const sshTimeoutMs = sshCommandTimeoutMs(inventory);
  // Builders and the seed build keep their own connections: Nix manages those.
  const targets = options.sshControlDir ? withConnectionReuse(inventory, options.sshControlDir) : inventory;

  const builderCommand = (host: HostName) => ({
    argv: sshArgv(inventory, builderTarget(inventory.hosts[host]!)!, ['nix-store', '--version']),
    timeoutMs: sshTimeoutMs,
  });
  const builderCheck = { host: seed, role: 'builder' as const, command: builderCommand(seed) };
  const seedFallbacks = seedCandidates(inventory, hosts)
    .filter((host) => host !== seed)
    .map((host) => ({ host, command: builderCommand(host) }));
  // A non-root deploy user must get root without a password (sudo -n), as every root step will.
  const targetChecks = hosts.map((host) => {
    const target = deployTarget(inventory.hosts[host]!);
    return {
      host,
      role: 'target' as const,
      command: { argv: sshArgv(targets, target, asRoot(target, ['true'])), timeoutMs: sshTimeoutMs },
      escalates: target.escalation === 'sudo',
    };
  });

  const rest = hosts.filter((h) => h !== seed);
  const rolling = options.rolling ?? false;
  const batchSize = Math.max(1, options.batchSize ?? 1);
  const restWaves = rolling ? chunk(rest, batchSize) : [rest];
  const waves = [...(hosts.includes(seed) ? [[seed]] : []), ...restWaves].filter((w) => w.length > 0);
  const confirmTimeoutSeconds = options.confirmTimeoutSeconds ?? defaultConfirmSeconds(inventory);
  const runId = options.runId ?? 'RUN-ID';
  const rebuildTool = options.rebuildTool ?? unprobedRebuildTool(inventory.nixosRebuild.command);
  const { flags: rebuildFlags, problems: rebuildProblems } = planRebuildFlags(inventory, hosts, rebuildTool, options.localSystem ?? inventory.coordinator.system);

  return {
    inventory,
    targetInventory: targets,
    options,
    hosts,
    seed,
    goal: options.goal,
    flake,
    onCoordinator: options.onCoordinator,
    preflight: {
      ssh: [builderCheck, ...targetChecks],
      seedFallbacks,
      cacheUrl: inventory.cache.url,
      requestTimeoutMs: t.connectSeconds * 1000,
      cacheKey: {
        publicKey: inventory.cache.publicKey,
        listRoots: { argv: onCoordinatorArgv(inventory, options.onCoordinator, listRootsArgv(inventory.cache.gcRootDir)), timeoutMs: sshTimeoutMs },
      },
      gcRootDirWritable: { argv: onCoordinatorArgv(inventory, options.onCoordinator, writableDirArgv(inventory.cache.gcRootDir)), timeoutMs: sshTimeoutMs },
    },
    rebuild: { tool: rebuildTool, problems: rebuildProblems },
    evaluate: { argv: evaluateToplevelsArgv(inventory, flake, hosts), env: nixEnv, timeoutMs: 10 * MINUTE },
    seedBuild: { argv: seedBuildArgv(inventory, flake, seed, hosts), env: nixEnv, timeoutMs: t.buildMinutes * MINUTE },
    waitForCache: {
      cacheUrl: inventory.cache.url,
      timeoutMs: t.cacheWaitSeconds * 1000,
      requestTimeoutMs: t.connectSeconds * 1000,
      allowUnsigned: options.allowUnsigned ?? false,
    },
    deploy: {
      waves,
      concurrency: rolling ? batchSize : Math.max(1, options.concurrency ?? Math.max(1, rest.length)),
      rolling,
      keepGoing: options.keepGoing ?? false,
      rollback: options.rollback ?? true,
      magicRollback: (options.magicRollback ?? true) && ACTIVATING_GOALS.includes(options.goal),
      confirmTimeoutSeconds,
      steps: Object.fromEntries(hosts.map((host) => [host, hostSteps(targets, host, runId, options.goal, confirmTimeoutSeconds)])),
      closeConnections: options.sshControlDir
        ? hosts.map((host) => ({ argv: closeMasterArgv(targets, deployTarget(inventory.hosts[host]!)), timeoutMs: sshTimeoutMs }))
        : [],
      commands: Object.fromEntries(
        hosts.map((host) => [
          host,
          {
            argv: nixosRebuildArgv(inventory, flake, host, options.goal, rebuildFlags[host]!),
            env: nixosRebuildEnv(targets, host),
            timeoutMs: t.deployMinutes * MINUTE,
          },
        ]),
      ),
    },
  };
}

/** The same plan with another seed, when the chosen one does not answer. */
export function replanWithSeed(plan: DeployPlan, seed: HostName): DeployPlan {
  return planDeploy(plan.inventory, plan.hosts, { ...plan.options, seed });
}

/** Only known after the build: bring the toplevels to the cache host. */
export function planCopyToCoordinator(plan: DeployPlan, storePaths: readonly string[]): PlannedCommand | undefined {
  if (plan.onCoordinator) return undefined;
  return {
    argv: copyToCoordinatorArgv(plan.inventory, storePaths),
    env: { NIX_SSHOPTS: nixSshOpts(plan.inventory) },
    timeoutMs: plan.inventory.timeouts.buildMinutes * MINUTE,
  };
}

/** A short remote command: connecting may take ConnectTimeout, twice over a slow link. */
export function sshCommandTimeoutMs(inventory: Inventory): number {
  return (inventory.timeouts.connectSeconds * 2 + 10) * 1000;
}

export interface PlannedPin {
  /** mkdir -p, then one ln -sfn per toplevel */
  readonly commands: readonly PlannedCommand[];
  readonly roots: readonly { readonly storePath: string; readonly root: string }[];
  /** where the commands run: "local" or user@address of the coordinator */
  readonly on: string;
}

/**
 * Only known after the build: pin the toplevels on the cache host with GC
 * roots, so the daily GC keeps what the cache serves even where the
 * post-build hook is missing.
 */
export function planPinRoots(plan: DeployPlan, storePaths: readonly string[]): PlannedPin {
  const { inventory, onCoordinator } = plan;
  const dir = inventory.cache.gcRootDir;
  return {
    commands: pinRootsArgvs(dir, storePaths).map((argv) => ({
      argv: onCoordinatorArgv(inventory, onCoordinator, argv),
      timeoutMs: sshCommandTimeoutMs(inventory),
    })),
    roots: storePaths.map((storePath) => ({ storePath, root: rootPath(dir, storePath) })),
    on: onCoordinator ? 'local' : destination(coordinatorTarget(inventory)),
  };
}

const ACTIVATING_GOALS: readonly Goal[] = ['switch', 'test'];

/**
 * Each host's nixos-rebuild flags for `tool` run on a machine of
 * `localSystem` (the sudo flag where the target escalates, the no-re-exec
 * flag), and every problem that would make one fail (the deploy's preflight
 * and the doctor report the same ones).
 */
export function planRebuildFlags(
  inventory: Inventory,
  hosts: readonly HostName[],
  tool: RebuildTool,
  localSystem: string,
): { readonly flags: Readonly<Record<HostName, RebuildFlags>>; readonly problems: readonly string[] } {
  const flags = Object.fromEntries(
    hosts.map((host) => {
      const entry = inventory.hosts[host]!;
      const needsSudo = deployTarget(entry).escalation === 'sudo';
      return [host, chooseRebuildFlags(tool, { needsSudo, crossSystem: entry.system !== localSystem }, inventory.nixosRebuild)];
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

function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

export function isOnCoordinator(inventory: Inventory, hostname: string): boolean {
  const { local, name, address } = inventory.coordinator;
  const short = hostname.split('.')[0];
  return local || hostname === address || short === name;
}
