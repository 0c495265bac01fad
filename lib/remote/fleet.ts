/**
 * The inventory's machines as {@link RemoteHost} values: a target as its
 * deploy user, a builder as its builder user, the coordinator as the
 * coordinator user; and the coordinator as a place that is this machine or
 * reached over SSH (colmena's local-or-SSH host).
 */
import type { HostName, Inventory, InventoryHost } from '../inventory/schema.ts';
import { type RemoteHost, remoteArgv } from './host.ts';

/** ssh options for every connection: the inventory's first (ssh keeps the first value), then bounded defaults. */
export function sshOptions(inventory: Inventory): string[] {
  const seconds = inventory.timeouts.connectSeconds;
  const given = new Set(inventory.ssh.options.map((o) => o.split('=')[0]!.toLowerCase()));
  const defaults = ['BatchMode=yes', `ConnectTimeout=${seconds}`, `ServerAliveInterval=${seconds}`, 'ServerAliveCountMax=3'];
  return [
    ...inventory.ssh.options,
    ...defaults.filter((d) => !given.has(d.split('=')[0]!.toLowerCase())).flatMap((d) => ['-o', d]),
  ];
}

/** ssh options that reuse one master connection per user@host for the run, its sockets in `controlDir`. */
export function connectionReuseOptions(controlDir: string): string[] {
  return ['-o', 'ControlMaster=auto', '-o', `ControlPath=${controlDir}/%C`, '-o', 'ControlPersist=60'];
}

/** `host` reusing one master connection for the run when `controlDir` is given ({@link connectionReuseOptions}), else as it is. */
export function reusingConnection(host: RemoteHost, controlDir: string | undefined): RemoteHost {
  return controlDir ? { ...host, sshOptions: [...host.sshOptions, ...connectionReuseOptions(controlDir)] } : host;
}

function entryOf(inventory: Inventory, name: HostName): InventoryHost {
  const entry = inventory.hosts[name];
  if (!entry) throw new Error(`unknown host ${name}`);
  return entry;
}

/** A deploy target as its deploy user; `controlDir`: reuse one connection per target for the run. */
export function targetHost(inventory: Inventory, name: HostName, controlDir?: string): RemoteHost {
  const entry = entryOf(inventory, name);
  return {
    user: entry.deployUser,
    address: entry.address,
    escalation: entry.deployUser === 'root' ? 'none' : 'sudo',
    ...(entry.sshKey ? { identityFile: entry.sshKey } : {}),
    sshOptions: [...sshOptions(inventory), ...(controlDir ? connectionReuseOptions(controlDir) : [])],
  };
}

/**
 * This machine as a deploy target (the coordinator deploying itself): its
 * commands run here without ssh, as the orchestrator's `user`, behind
 * `sudo -n` for root unless that user is root.
 */
export function localTargetHost(inventory: Inventory, name: HostName, user: string): RemoteHost {
  const entry = entryOf(inventory, name);
  return { user, address: entry.address, escalation: user === 'root' ? 'none' : 'sudo', sshOptions: [], local: true };
}

/**
 * The host among `hosts` that is the machine the orchestrator runs on, if
 * any: the one whose name is this machine's hostname (or its first label),
 * or whose address is the hostname. Only the hostname tells: deploying a
 * host here, without ssh, applies its configuration to this machine, a
 * stronger claim than `coordinator.local` (the coordinator's commands run
 * here), which {@link localCoordinatorProblem} checks against the hostname.
 */
export function thisMachineAmong(inventory: Inventory, hosts: readonly HostName[], hostname: string): HostName | undefined {
  const short = hostname.split('.')[0];
  return hosts.find((name) => name === short || inventory.hosts[name]!.address.host === hostname);
}

/**
 * Why `coordinator.local: true` cannot be right on this machine, if it
 * cannot: the hostname names another host of the inventory (the run would
 * pin and lock here, and treat this machine as the coordinator).
 */
export function localCoordinatorProblem(inventory: Inventory, hostname: string): string | undefined {
  const named = thisMachineAmong(inventory, Object.keys(inventory.hosts), hostname);
  if (!inventory.coordinator.local || named === undefined || named === inventory.coordinator.name) return undefined;
  return `coordinator.local is true (the run is on ${inventory.coordinator.name}), but this machine's hostname ${hostname} is ${named}'s: ` +
    `set coordinator.local to false where the run is not always on ${inventory.coordinator.name}`;
}

/** The selected host that is this machine, and the user the orchestrator runs as here (whose sudo -n the root steps use). */
export interface Here {
  readonly name: HostName;
  readonly user: string;
}

/** {@link thisMachineAmong} with the user the orchestrator runs as here: the target reached without ssh, if any. */
export function hereAmong(inventory: Inventory, hosts: readonly HostName[], hostname: string, user: string): Here | undefined {
  const name = thisMachineAmong(inventory, hosts, hostname);
  return name === undefined ? undefined : { name, user };
}

/**
 * A target as every command reaches it: this machine (`here`) without ssh
 * (localTargetHost), any other over ssh as its deploy user (targetHost;
 * `controlDir`: one reused connection for the run).
 */
export function reachTarget(inventory: Inventory, name: HostName, here: Here | undefined, controlDir?: string): RemoteHost {
  return name === here?.name ? localTargetHost(inventory, name, here.user) : targetHost(inventory, name, controlDir);
}

/** A remote builder as its builder user (no root: its Nix daemon trusts that user); undefined when the host builds nothing. */
export function builderHost(inventory: Inventory, name: HostName): RemoteHost | undefined {
  const entry = entryOf(inventory, name);
  if (!entry.builder) return undefined;
  const { user, sshKey } = entry.builder;
  return { user, address: entry.address, escalation: 'none', ...(sshKey ? { identityFile: sshKey } : {}), sshOptions: sshOptions(inventory) };
}

/** The coordinator (hawk) over SSH as coordinator.user: what runs there (copy, pin, lock) needs no root. */
export function coordinatorHost(inventory: Inventory): RemoteHost {
  const { user, address } = inventory.coordinator;
  return { user, address, escalation: 'none', sshOptions: sshOptions(inventory) };
}

/**
 * The coordinator as a remote builder of its own system, for a run started
 * elsewhere: as coordinator.user, with coordinator.builder's machine fields
 * (lib/nix/commands.ts coordinatorBuilderSpec).
 */
export function coordinatorBuilderHost(inventory: Inventory): RemoteHost {
  const sshKey = inventory.coordinator.builder?.sshKey;
  return { ...coordinatorHost(inventory), ...(sshKey ? { identityFile: sshKey } : {}) };
}

/** Where the coordinator's commands run: here, or over SSH. */
export type CoordinatorPlace = { readonly kind: 'local' } | { readonly kind: 'ssh'; readonly host: RemoteHost };

export function coordinatorPlace(inventory: Inventory, onCoordinator: boolean): CoordinatorPlace {
  return onCoordinator ? { kind: 'local' } : { kind: 'ssh', host: coordinatorHost(inventory) };
}

/** argv that runs `argv` at `place`: as is here, else over SSH. */
export function atPlace(place: CoordinatorPlace, argv: readonly string[]): string[] {
  return place.kind === 'local' ? [...argv] : remoteArgv(place.host, argv);
}

/**
 * Whether this machine (`hostname`) is the coordinator: `coordinator.local`,
 * or its name or address matches the hostname or its first label.
 */
export function isOnCoordinator(inventory: Inventory, hostname: string): boolean {
  const { local, name, address } = inventory.coordinator;
  const short = hostname.split('.')[0];
  return local || hostname === address.host || short === name;
}

/**
 * The bound on a short remote command (a probe, a check, a lock step), in
 * ms: connecting may take ConnectTimeout, twice over a slow link, plus 10 s.
 */
export function shortCommandTimeoutMs(inventory: Inventory): number {
  return (inventory.timeouts.connectSeconds * 2 + 10) * 1000;
}
