/** argv for the rollback safety steps around one host's nixos-rebuild. Pure. */
import type { HostName, Inventory } from '../inventory/schema.ts';
import type { Goal } from '../nix/commands.ts';
import { asRoot, deployTarget, FRESH_CONNECTION, sshArgv } from '../ssh.ts';
import { armArgs, CONFIRM, PROBE_GENERATION, ROLLBACK } from './remote-scripts.ts';

/** What a host ran before the deploy, to go back to. */
export interface Generation {
  /** the profile's link, e.g. system-5-link; empty when the host had no profile */
  readonly profileLink: string;
  readonly profilePath: string;
  /** the running system's store path; empty when unknown */
  readonly currentSystem: string;
}

export function parseGeneration(stdout: string): Generation {
  const [profileLink = '', profilePath = '', currentSystem = ''] = stdout.split('\n').map((l) => l.trim());
  return { profileLink, profilePath, currentSystem };
}

/** Reads what a host runs: its profile link, the path that resolves to, and the running system (also the doctor's target check). */
export function generationProbe(inventory: Inventory, host: HostName): string[] {
  const { profile, currentSystem } = inventory.paths;
  return sshArgv(inventory, deployTarget(inventory.hosts[host]!), ['sh', '-c', PROBE_GENERATION, 'avalanche-probe', profile, currentSystem]);
}

export interface HostSteps {
  readonly probe: string[];
  arm(previous: Generation): string[];
  /** over a new connection: no multiplexing, so a dead path cannot confirm */
  readonly confirm: string[];
  rollback(previous: Generation): string[];
}

export function hostSteps(inventory: Inventory, host: HostName, runId: string, goal: Goal, confirmSeconds: number): HostSteps {
  const entry = inventory.hosts[host]!;
  const target = deployTarget(entry);
  const { profile, currentSystem, targetState } = inventory.paths;
  const canary = `${targetState}/canary-${runId}`;
  const marker = `${targetState}/rollbacks.log`;
  const common = (prev: Generation) => [profile, currentSystem, prev.profileLink, prev.currentSystem, goal, marker, canary];
  // The watchdog, its canary in targetState and the profile belong to root.
  const asRootThere = (argv: string[], extraOptions: readonly string[] = []) => sshArgv(inventory, target, asRoot(target, argv), extraOptions);
  // Bounded: the watchdog gives up waiting for an activation after the deploy timeout.
  const armSeconds = String(Math.ceil(inventory.timeouts.deployMinutes * 60));
  return {
    probe: generationProbe(inventory, host),
    arm: (prev) => asRootThere(armArgs([...common(prev), String(confirmSeconds), armSeconds])),
    confirm: asRootThere(['sh', '-c', CONFIRM, 'avalanche-confirm', canary, marker, profile, currentSystem], FRESH_CONNECTION),
    rollback: (prev) => asRootThere(['sh', '-c', ROLLBACK, 'avalanche-rollback', ...common(prev)]),
  };
}
