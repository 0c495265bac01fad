/**
 * Pure planning: from the inventory, the selection and the options, what a
 * deploy will run, stage by stage. --dry-run prints this plan, the stages
 * execute it, and the unit tests assert on it.
 */
import type { HostName, Inventory } from './inventory/schema.ts';
import { chooseSeed } from './inventory/select.ts';
import {
  copyToCoordinatorArgv,
  evaluateToplevelsArgv,
  type Goal,
  nixosRebuildArgv,
  nixosRebuildEnv,
  seedBuildArgv,
} from './nix/commands.ts';
import { builderTarget, deployTarget, nixSshOpts, sshArgv } from './ssh.ts';

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
}

export interface DeployPlan {
  readonly inventory: Inventory;
  readonly hosts: readonly HostName[];
  readonly seed: HostName;
  readonly goal: Goal;
  readonly flake: string;
  readonly onCoordinator: boolean;
  readonly preflight: {
    /** the seed (as builder) and every selected host (as deploy target) */
    readonly ssh: readonly { readonly host: HostName; readonly role: 'builder' | 'target'; readonly command: PlannedCommand }[];
    readonly cacheUrl: string;
    readonly requestTimeoutMs: number;
  };
  readonly evaluate: PlannedCommand;
  readonly seedBuild: PlannedCommand;
  readonly waitForCache: { readonly cacheUrl: string; readonly timeoutMs: number; readonly requestTimeoutMs: number };
  readonly deploy: {
    /** the seed alone first (when selected), then the rest */
    readonly waves: readonly (readonly HostName[])[];
    readonly concurrency: number;
    readonly commands: Readonly<Record<HostName, PlannedCommand>>;
  };
}

const MINUTE = 60_000;

export function planDeploy(inventory: Inventory, hosts: readonly HostName[], options: PlanOptions): DeployPlan {
  const seed = chooseSeed(inventory, hosts, options.seed);
  const flake = options.flake ?? inventory.flake;
  const t = inventory.timeouts;
  const nixEnv = { NIX_SSHOPTS: nixSshOpts(inventory) };
  const sshTimeoutMs = (t.connectSeconds * 2 + 10) * 1000;

  const seedEntry = inventory.hosts[seed]!;
  const builderCheck = {
    host: seed,
    role: 'builder' as const,
    command: { argv: sshArgv(inventory, builderTarget(seedEntry)!, ['nix-store', '--version']), timeoutMs: sshTimeoutMs },
  };
  const targetChecks = hosts.map((host) => ({
    host,
    role: 'target' as const,
    command: { argv: sshArgv(inventory, deployTarget(inventory.hosts[host]!), ['true']), timeoutMs: sshTimeoutMs },
  }));

  const rest = hosts.filter((h) => h !== seed);
  const waves = hosts.includes(seed) ? [[seed], rest].filter((w) => w.length > 0) : [rest];

  return {
    inventory,
    hosts,
    seed,
    goal: options.goal,
    flake,
    onCoordinator: options.onCoordinator,
    preflight: { ssh: [builderCheck, ...targetChecks], cacheUrl: inventory.cache.url, requestTimeoutMs: t.connectSeconds * 1000 },
    evaluate: { argv: evaluateToplevelsArgv(inventory, flake, hosts), env: nixEnv, timeoutMs: 10 * MINUTE },
    seedBuild: { argv: seedBuildArgv(inventory, flake, seed, hosts), env: nixEnv, timeoutMs: t.buildMinutes * MINUTE },
    waitForCache: { cacheUrl: inventory.cache.url, timeoutMs: t.cacheWaitSeconds * 1000, requestTimeoutMs: t.connectSeconds * 1000 },
    deploy: {
      waves,
      concurrency: Math.max(1, options.concurrency ?? Math.max(1, rest.length)),
      commands: Object.fromEntries(
        hosts.map((host) => [
          host,
          {
            argv: nixosRebuildArgv(inventory, flake, host, options.goal),
            env: nixosRebuildEnv(inventory, host),
            timeoutMs: t.deployMinutes * MINUTE,
          },
        ]),
      ),
    },
  };
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

export function isOnCoordinator(inventory: Inventory, hostname: string): boolean {
  const { local, name, address } = inventory.coordinator;
  const short = hostname.split('.')[0];
  return local || hostname === address || short === name;
}
