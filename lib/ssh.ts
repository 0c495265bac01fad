/**
 * How the orchestrator reaches hosts over SSH. The same options go to our own
 * ssh calls and, through NIX_SSHOPTS, to Nix and nixos-rebuild, so a host that
 * answers preflight is reached the same way by the deploy.
 */
import type { Inventory, InventoryHost } from './inventory/schema.ts';

export interface SshTarget {
  readonly user: string;
  readonly address: string;
  readonly identityFile?: string | undefined;
  /**
   * How steps that need root get it: `sudo -n` for a non-root user, as
   * nixos-rebuild's --sudo/--use-remote-sudo does for the activation (but
   * never prompting: -n fails instead of asking for a password).
   */
  readonly escalation: 'none' | 'sudo';
}

export function deployTarget(host: InventoryHost): SshTarget {
  return { user: host.deployUser, address: host.address, identityFile: host.sshKey, escalation: host.deployUser === 'root' ? 'none' : 'sudo' };
}

/** The non-interactive sudo prefix: -n makes sudo fail ("a password is required") rather than prompt. */
export const SUDO_NON_INTERACTIVE = ['sudo', '-n', '--'] as const;

/** What to do when a deploy user's `sudo -n` refuses (preflight and doctor). */
export const SUDO_HINT =
  'Every step that needs root (activation, the watchdog, confirmation, rollback) uses sudo -n: give the deploy user passwordless sudo ' +
  '(NixOS: security.sudo.extraRules with NOPASSWD for it, or security.sudo.wheelNeedsPassword = false with it in wheel), or deploy as root.';

/** `argv` as root on `target`: as is for root, behind `sudo -n --` otherwise. */
export function asRoot(target: SshTarget, argv: readonly string[]): string[] {
  return target.escalation === 'sudo' ? [...SUDO_NON_INTERACTIVE, ...argv] : [...argv];
}

export function builderTarget(host: InventoryHost): SshTarget | undefined {
  if (!host.builder) return undefined;
  // Builds need no root: the builder user is trusted by the target's Nix daemon.
  return { user: host.builder.user, address: host.address, identityFile: host.builder.sshKey, escalation: 'none' };
}

/** The coordinator (hawk): the cache host, where results land, roots are pinned and the lock lives. */
export function coordinatorTarget(inventory: Inventory): SshTarget {
  // What runs there (copy, pin, lock) needs write access only where the admin granted it: no sudo.
  return { user: inventory.coordinator.user, address: inventory.coordinator.address, escalation: 'none' };
}

/** argv that runs `argv` on the coordinator: as is when we are on it, else over SSH as coordinator.user. */
export function onCoordinatorArgv(inventory: Inventory, onCoordinator: boolean, argv: readonly string[]): string[] {
  return onCoordinator ? [...argv] : sshArgv(inventory, coordinatorTarget(inventory), argv);
}

export function destination(target: SshTarget): string {
  return `${target.user}@${target.address}`;
}

/**
 * The inventory's options first: ssh keeps the first value it sees for an
 * option, so the inventory can override these bounded defaults.
 */
export function sshOptions(inventory: Inventory, target?: SshTarget): string[] {
  const seconds = inventory.timeouts.connectSeconds;
  const given = new Set(inventory.ssh.options.map((o) => o.split('=')[0]!.toLowerCase()));
  const defaults = ['BatchMode=yes', `ConnectTimeout=${seconds}`, `ServerAliveInterval=${seconds}`, 'ServerAliveCountMax=3'];
  return [
    ...inventory.ssh.options,
    ...(target?.identityFile ? ['-i', target.identityFile] : []),
    ...defaults.filter((d) => !given.has(d.split('=')[0]!.toLowerCase())).flatMap((d) => ['-o', d]),
  ];
}

/** NIX_SSHOPTS is split on whitespace by Nix; the schema forbids spaces inside options. */
export function nixSshOpts(inventory: Inventory, target?: SshTarget): string {
  return sshOptions(inventory, target).join(' ');
}

/** ssh hands the remote command to the login shell: quote every word for a POSIX sh. */
export function sshArgv(
  inventory: Inventory,
  target: SshTarget,
  remoteArgv: readonly string[],
  extraOptions: readonly string[] = [],
): string[] {
  // extraOptions first: ssh keeps the first value of an option, and FRESH_CONNECTION must win.
  return ['ssh', ...extraOptions, ...sshOptions(inventory, target), destination(target), '--', remoteArgv.map(shellQuote).join(' ')];
}

/**
 * The inventory with connection reuse for this run's many short commands
 * per target (probe, arm, health checks, nixos-rebuild's copies): one master
 * per user@host in `controlDir`, closed at the end of the run (closeMasterArgv).
 */
export function withConnectionReuse(inventory: Inventory, controlDir: string): Inventory {
  const reuse = ['-o', 'ControlMaster=auto', '-o', `ControlPath=${controlDir}/%C`, '-o', 'ControlPersist=60'];
  return { ...inventory, ssh: { ...inventory.ssh, options: [...inventory.ssh.options, ...reuse] } };
}

export function closeMasterArgv(inventory: Inventory, target: SshTarget): string[] {
  return ['ssh', ...sshOptions(inventory, target), '-O', 'exit', destination(target)];
}

/** A connection of its own, never multiplexed over an existing master. */
export const FRESH_CONNECTION = ['-o', 'ControlMaster=no', '-o', 'ControlPath=none'] as const;

export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
