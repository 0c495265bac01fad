/**
 * The fleet document's troubleshooting for builders, targets and local
 * builds, worded for what the doctor saw. The cache's and the GC roots'
 * hints are in lib/cache/hints.ts.
 */
import { type RemoteHost, sshDestination } from '../remote/host.ts';

export const builderHints = {
  sshKey: (target: RemoteHost) =>
    `SSH key issue: test with ssh -i ${target.identityFile ?? '<builder key>'} ${sshDestination(target)} — the key must be in ${target.user}'s authorized_keys there`,
  offline: () => 'Builder offline: Nix falls back to local build (QEMU) if no builders respond',
  noNixStore: (user: string) => `nix-store must be on ${user}'s PATH for non-interactive SSH: Nix builds over ssh:// with nix-store --serve`,
  wrongSystem: (host: string, system: string) =>
    `Wrong system: ${host} must build ${system} natively or list it in extra-platforms, and the buildMachines entry must say systems = [ "${system}" ]`,
} as const;

export const targetHints = {
  ssh: (target: RemoteHost) =>
    `Check the address, the deploy key and known_hosts: ssh${target.identityFile ? ` -i ${target.identityFile}` : ''} ${sshDestination(target)} must work by hand`,
  neverDeployed: () => 'No system profile yet: the host was never deployed with nixos-rebuild switch or boot',
} as const;

export const localBuildHints = {
  emulation: (system: string) =>
    `Builder offline: Nix falls back to local build (QEMU) if no builders respond — this machine lists ${system} in extra-platforms (boot.binfmt.emulatedSystems?); remove it so ${system} is only built on the builders`,
} as const;
