/**
 * The planner of a rollback (lib/plan/types.ts RollbackPlan): the deploy's
 * lock, target preflight and deploy stage (lib/plan/assemble.ts), with the
 * switch to a generation the host has in place of nixos-rebuild. Pure: it
 * runs nothing.
 */
import { userInfo } from 'node:os';
import type { HostName, Inventory } from '../inventory/schema.ts';
import { coordinatorPlace, shortCommandTimeoutMs } from '../remote/fleet.ts';
import { generationsArgv } from '../remote/generations.ts';
import { remoteArgv } from '../remote/host.ts';
import { SWITCH_TO_GENERATION } from '../remote/scripts.ts';
import { type DeployStageChoices, planWaves, planDeployStage, planLock, planTargetChecks, planTargets } from './assemble.ts';
import { concurrencyFor } from './concurrency.ts';
import { PLACEHOLDER } from './placeholders.ts';
import { OPERATION_STAGES, type RollbackPlan, type RollbackTarget } from './types.ts';

export interface RollbackPlanOptions extends DeployStageChoices {
  /** where each host goes back to, by host */
  readonly to: (host: HostName) => RollbackTarget;
  readonly goal?: RollbackPlan['goal'] | undefined;
  readonly onCoordinator: boolean;
  /** the selected host that is this machine: switched back here, without ssh, last */
  readonly thisMachine?: HostName | undefined;
  /** the user the rollback runs as here; default: this process's */
  readonly localUser?: string | undefined;
}

/**
 * The whole rollback plan for `hosts`: one wave (at most `concurrency` at a
 * time, default all), or waves of `batchSize` with `rolling`. The activation
 * runs lib/remote/scripts.ts SWITCH_TO_GENERATION as root with the toplevel
 * the resolve stage chose (`{{toplevel:<host>}}`).
 */
export function planRollback(inventory: Inventory, hosts: readonly HostName[], options: RollbackPlanOptions): RollbackPlan {
  const goal = options.goal ?? 'switch';
  const shortMs = shortCommandTimeoutMs(inventory);
  const here = options.thisMachine !== undefined && hosts.includes(options.thisMachine) ? options.thisMachine : undefined;
  const targets = planTargets(inventory, hosts, options.reuseConnections ?? true, here === undefined ? undefined : { name: here, user: options.localUser ?? userInfo().username });
  const coordinator = coordinatorPlace(inventory, options.onCoordinator);
  const rolling = options.rolling ?? false;
  const batchSize = Math.max(1, options.batchSize ?? 1);
  const waves = planWaves(hosts, { last: [inventory.coordinator.name, ...(here === undefined ? [] : [here])], rolling, batchSize });
  return {
    operation: 'rollback',
    goal,
    stages: [...OPERATION_STAGES.rollback],
    hosts: [...hosts],
    coordinator: { name: inventory.coordinator.name, place: coordinator },
    lock: planLock(inventory, coordinator),
    preflight: { targets: planTargetChecks(hosts, targets, shortMs) },
    resolve: {
      hosts: Object.fromEntries(
        hosts.map((host) => [host, { list: { argv: generationsArgv(targets[host]!, inventory.paths), timeoutMs: shortMs }, to: options.to(host) }]),
      ),
    },
    waves,
    deploy: planDeployStage(inventory, hosts, targets, {
      ...options,
      goal,
      concurrency: rolling ? batchSize : concurrencyFor(Math.max(...waves.map((w) => w.length)), options.concurrency),
      activate: (host, target) => ({
        argv: remoteArgv(target, ['sh', '-c', SWITCH_TO_GENERATION, 'avalanche-switch', inventory.paths.profile, PLACEHOLDER.generation(host), PLACEHOLDER.toplevel(host), goal], { asRoot: true }),
        timeoutMs: inventory.timeouts.deployMinutes * 60_000,
      }),
    }),
  };
}
