/**
 * A remote host as one value (colmena's `Host`): who to log in as, where,
 * how root is reached there and with which ssh options. Every command line
 * that reaches a host is built from this value by the functions below, each
 * syntax by its own function.
 */
import { z } from 'zod';
import { type HostAddress, hostAddressSchema } from '../inventory/schema.ts';
import { shellQuote } from '../util/shell.ts';

export const remoteHostSchema = z.object({
  user: z.string(),
  /** parsed once by the inventory schema; each syntax below spells it its own way */
  address: hostAddressSchema,
  /**
   * How steps that need root get it: `sudo -n` for a non-root user, as
   * nixos-rebuild's --sudo/--use-remote-sudo does for the activation (but
   * never prompting: -n fails instead of asking for a password).
   */
  escalation: z.enum(['none', 'sudo']),
  /** the private key to log in with (ssh -i); absent: ssh's own defaults and agent */
  identityFile: z.string().optional(),
  /** ssh(1) options, given before the destination: ssh keeps the first value it sees for an option */
  sshOptions: z.array(z.string()),
  /**
   * This machine, the one the orchestrator runs on (the coordinator deploying
   * itself): its commands run here, without ssh, as the orchestrator's user
   * (`user`), behind `sudo -n` for root like a remote non-root user's.
   */
  local: z.literal(true).optional(),
});
export type RemoteHost = z.infer<typeof remoteHostSchema>;

/** The non-interactive sudo prefix: -n makes sudo fail ("a password is required") rather than prompt. */
export const SUDO_NON_INTERACTIVE = ['sudo', '-n', '--'] as const;

/** What to do when a deploy user's `sudo -n` refuses (preflight and doctor). */
export const SUDO_HINT =
  'Every step that needs root (activation, the watchdog, confirmation, rollback) uses sudo -n: give the deploy user passwordless sudo ' +
  '(NixOS: security.sudo.extraRules with NOPASSWD for it, or security.sudo.wheelNeedsPassword = false with it in wheel), or deploy as root.';

/** ssh's own exit status when it cannot connect or authenticate, or the connection fails (ssh(1)); the remote command's status otherwise (a remote command's own 255 looks the same). */
export const SSH_FAILED = 255;

/** A connection of its own, never multiplexed over an existing master (the confirmation must prove a new login works). */
export const FRESH_CONNECTION = ['-o', 'ControlMaster=no', '-o', 'ControlPath=none'] as const;

/** ssh's destination argument: `user@address`, an IPv6 address without brackets (ssh would take `[fd00::13]` for a host name). */
/** Who runs a host's commands, for people: `deploy@opi01.internal`, or `here, as avl` for this machine. */
export function describeReach(host: RemoteHost): string {
  return host.local ? `here, as ${host.user}` : sshDestination(host);
}

export function sshDestination(host: RemoteHost): string {
  return `${host.user}@${host.address.host}`;
}

/** The address as a URL's host: an IPv6 address in brackets (RFC 3986). */
function urlHost(address: HostAddress): string {
  return address.kind === 'ipv6' ? `[${address.host}]` : address.host;
}

/**
 * The Nix store URI of the host's store over SSH (`nix copy --to`, a
 * `--builders` entry): `ssh://user@host`, an IPv6 address in brackets, which
 * Nix requires since 2.31 and has taken since 2.4, passing ssh the address
 * without them (the evidence: lib/inventory/schema.ts, above targetAddress).
 * Built by the URL class, which refuses a host it cannot carry.
 */
export function nixSshStoreUri(host: RemoteHost): string {
  // The URL class ignores a host it cannot take: start from one that never resolves (RFC 2606 .invalid) and check it was replaced.
  const unset = 'unset.invalid';
  const uri = new URL(`ssh://${unset}`);
  uri.hostname = urlHost(host.address);
  uri.username = host.user;
  if (uri.hostname === unset || uri.username !== host.user) {
    throw new Error(`cannot write ${host.user} at ${host.address.host} as an ssh:// store URI`);
  }
  return uri.href;
}

/**
 * nixos-rebuild's `--target-host` value: it hands it to ssh and to
 * nix-copy-closure (`ssh://` + the value) alike, so no IPv6 literal works
 * there; the inventory schema refuses one for a target (with the evidence).
 */
export function targetHostArg(host: RemoteHost): string {
  if (host.address.kind === 'ipv6') {
    throw new Error(`--target-host cannot name the IPv6 address ${host.address.host} (ssh and nix-copy-closure spell it differently): use a host name`);
  }
  return sshDestination(host);
}

/** Every option ssh gets for `host`: its options, then its identity. */
export function sshOptionArgs(host: RemoteHost): string[] {
  return [...host.sshOptions, ...(host.identityFile ? ['-i', host.identityFile] : [])];
}

/** NIX_SSHOPTS: Nix splits it on whitespace (the inventory schema forbids spaces inside options). */
export function nixSshOpts(host: RemoteHost): string {
  return sshOptionArgs(host).join(' ');
}

/** `argv` as root on `host`: as is for root, behind `sudo -n --` otherwise. */
export function asRoot(host: RemoteHost, argv: readonly string[]): string[] {
  return host.escalation === 'sudo' ? [...SUDO_NON_INTERACTIVE, ...argv] : [...argv];
}

export interface RemoteOptions {
  /** run it as root (behind `sudo -n --` for a non-root user) */
  readonly asRoot?: boolean | undefined;
  /** ssh options that must win over the host's (ssh keeps the first value): e.g. {@link FRESH_CONNECTION} */
  readonly extraOptions?: readonly string[] | undefined;
}

/**
 * argv that runs `argv` on `host`: over ssh, which hands the remote command
 * to the login shell as one string, so every word is quoted for a POSIX sh
 * and each element arrives as one argument; or as is when the host is this
 * machine (`local`).
 */
export function remoteArgv(host: RemoteHost, argv: readonly string[], options: RemoteOptions = {}): string[] {
  const command = options.asRoot ? asRoot(host, argv) : [...argv];
  if (host.local) return command;
  return ['ssh', ...(options.extraOptions ?? []), ...sshOptionArgs(host), sshDestination(host), '--', command.map(shellQuote).join(' ')];
}

/** Closes the host's ssh master connection (when its options reuse one). */
export function closeMasterArgv(host: RemoteHost): string[] {
  return ['ssh', ...sshOptionArgs(host), '-O', 'exit', sshDestination(host)];
}
