/** argv for every Nix and nixos-rebuild command the orchestrator runs. Pure. */
import { HOST_PLACEHOLDER, type HostName, type Inventory } from '../inventory/schema.ts';
import { nixSshOpts, nixSshStoreUri, type RemoteHost, remoteArgv, targetHostArg } from '../remote/host.ts';
import { ACTIVATE_TOPLEVEL } from '../remote/scripts.ts';
import type { RebuildFlags } from './nixos-rebuild.ts';

export const GOALS = ['switch', 'boot', 'test', 'dry-activate'] as const;
export type Goal = (typeof GOALS)[number];

/** Goals that activate the new system now (and so get health checks and the magic-rollback watchdog). */
export const ACTIVATING_GOALS: readonly Goal[] = ['switch', 'test'];

export function toplevelAttribute(inventory: Inventory, host: HostName): string {
  return inventory.attribute.replace(HOST_PLACEHOLDER, host);
}

export function installable(flake: string, attribute: string): string {
  return `${flake}#${attribute}`;
}

/**
 * One `nix eval` for every host: the attribute pattern is split at `<host>`
 * into the attrset to open and the path inside each host. Names and segments
 * are validated by the inventory schema, so they are safe inside the expression.
 * The fields are not called drvPath/outPath: Nix prints an attrset with an
 * outPath as that string.
 */
export function evaluateToplevelsArgv(inventory: Inventory, flake: string, hosts: readonly HostName[]): string[] {
  const segments = inventory.attribute.split('.');
  const at = segments.indexOf(HOST_PLACEHOLDER);
  const prefix = segments.slice(0, at).join('.');
  const suffix = segments.slice(at + 1).map((s) => `.${s}`).join('');
  const names = hosts.map((h) => JSON.stringify(h)).join(' ');
  const expr =
    `attrs: builtins.listToAttrs (map (name: let t = attrs.\${name}${suffix}; in ` +
    `{ inherit name; value = { drv = t.drvPath; out = t.outPath; }; }) [ ${names} ])`;
  return ['nix', 'eval', '--json', installable(flake, prefix), '--apply', expr];
}

/** A builder's fields in Nix's machines format (nix.conf `builders`, nix.buildMachines). */
type MachineFields = Pick<NonNullable<Inventory['hosts'][string]['builder']>, 'sshKey' | 'maxJobs' | 'speedFactor' | 'supportedFeatures' | 'hostKey'>;

/** What the coordinator claims as a builder when coordinator.builder says nothing: one job, Nix's default system-features without kvm. */
const COORDINATOR_BUILDER_DEFAULTS: MachineFields = { maxJobs: 1, speedFactor: 1, supportedFeatures: ['nixos-test', 'benchmark', 'big-parallel'] };

/** One machines-format line: URI, system, key, max jobs, speed factor, features, mandatory features, host key ("-": Nix's default). */
function machinesLine(builder: RemoteHost, system: string, b: MachineFields): string {
  return [
    nixSshStoreUri(builder),
    system,
    b.sshKey ?? '-',
    String(b.maxJobs),
    String(b.speedFactor),
    b.supportedFeatures.length ? b.supportedFeatures.join(',') : '-',
    '-',
    b.hostKey ?? '-',
  ].join(' ');
}

/** A `--builders` entry in Nix's machines format for `builder` (the host's builder user); "-" for fields left to defaults. */
export function builderSpec(inventory: Inventory, host: HostName, builder: RemoteHost): string {
  const entry = inventory.hosts[host];
  if (!entry?.builder) throw new Error(`host ${host} is not a builder`);
  return machinesLine(builder, entry.system, entry.builder);
}

/** The coordinator's `--builders` entry for its own system, for a run started elsewhere (coordinator.builder, else one job with Nix's default features). */
export function coordinatorBuilderSpec(inventory: Inventory, builder: RemoteHost): string {
  return machinesLine(builder, inventory.coordinator.system, inventory.coordinator.builder ?? COORDINATOR_BUILDER_DEFAULTS);
}

/** Nix separates the machines of one `--builders` value with `;` (or newlines, which a command's placeholder value may not hold). */
export function joinBuilderSpecs(specs: readonly string[]): string {
  return specs.join(' ; ');
}

/** Whether a builder answers as its builder user and has Nix (preflight's seed check and the doctor's builder check). */
export function builderProbeArgv(builder: RemoteHost): string[] {
  return remoteArgv(builder, ['nix-store', '--version']);
}

/**
 * One system's seed build of `installables`: the evaluated toplevels'
 * derivations (lib/nix/version.ts derivationOutputInstallable), so the
 * flake is not evaluated a second time. On builders: `--builders` names only them and
 * `--max-jobs 0` forbids local builds, so nothing is built under emulation
 * on the coordinator; Nix places independent derivations across them (the
 * least loaded for its speed factor, the first on a tie: the seed) and
 * builds a derivation shared by several toplevels once. Here: natively on
 * this machine, the coordinator (`--builders ''` keeps the other systems'
 * builders of its nix.conf out, `--max-jobs auto` undoes a nix.conf that
 * delegates everything).
 *
 * `build-poll-interval 1`: a system's build of every toplevel finds what its
 * head start is building (the kernel) locked by that other `nix build`, and
 * Nix looks at a held lock again only every build-poll-interval seconds (5 by
 * default: up to 5 s lost once the kernel is done; seen here with Nix 2.8).
 * The setting is in Nix from 2.0 to today's, and one an untrusted client of
 * the daemon may set too (daemon.cc).
 */
export function seedBuildArgv(installables: readonly string[], on: { readonly builders: string } | 'here'): string[] {
  const placement = on === 'here'
    ? ['--max-jobs', 'auto', '--builders', '']
    : ['--max-jobs', '0', '--builders', on.builders, '--option', 'builders-use-substitutes', 'true'];
  return [
    // Nix 2.8 takes --log-format only before the subcommand.
    'nix', '--log-format', 'internal-json', 'build',
    '--no-link', '--json',
    '--option', 'build-poll-interval', '1',
    ...placement,
    ...installables,
  ];
}

/**
 * `nix copy` of `storePaths`' closures to `destination`'s store over
 * `ssh://` (lib/remote/host.ts nixSshStoreUri; ssh options through
 * NIX_SSHOPTS, {@link sshEnv}). `substituteOnDestination`: the destination
 * first fetches what it can from its own substituters (the cache), and only
 * the rest is pushed. Over `ssh://`, not `ssh-ng://`: Nix 2.8 ignores
 * --substitute-on-destination over ssh-ng (fixed much later), while both
 * 2.8 and 2.26 honour it over ssh:// — what nixos-rebuild's
 * `nix-copy-closure --use-substitutes` does too.
 */
export function copyToArgv(destination: RemoteHost, storePaths: readonly string[], options: { readonly substituteOnDestination?: boolean } = {}): string[] {
  return ['nix', 'copy', ...(options.substituteOnDestination ? ['--substitute-on-destination'] : []), '--to', nixSshStoreUri(destination), ...storePaths];
}

/** Where a host's configuration comes from in nixos-rebuild: evaluated from the flake, or the toplevel already built. */
export type RebuildSource = { readonly flake: string; readonly host: HostName } | { readonly storePath: string };

/**
 * nixos-rebuild for one host, with the flags chosen for the tool that will
 * run it (lib/nix/nixos-rebuild.ts): the sudo flag for a non-root user and
 * the flag that stops the re-exec, each only where needed. From a flake
 * (`--flake <ref>#<host>`: it evaluates and builds the host again) or from a
 * built toplevel (`--store-path`: recent nixos-rebuild-ng copies it,
 * substituting on the target with --use-substitutes, sets the profile and
 * activates; no evaluation).
 */
export function nixosRebuildArgv(command: readonly string[], source: RebuildSource, target: RemoteHost, goal: Goal, flags: RebuildFlags): string[] {
  return [
    ...command,
    goal,
    ...('storePath' in source ? ['--store-path', source.storePath] : ['--flake', `${source.flake}#${source.host}`]),
    // Without --target-host, nixos-rebuild activates this machine, with the same sudo flag.
    ...(target.local ? [] : ['--target-host', targetHostArg(target)]),
    '--use-substitutes',
    ...(flags.sudo ? [flags.sudo] : []),
    ...(flags.noReexec ? [flags.noReexec] : []),
    ...flags.extraArgs,
  ];
}

/**
 * The direct deploy method's steps for one host, nixos-rebuild's own without
 * it: copy the toplevel's closure to the target, the target fetching what
 * it can from its substituters (none for this machine: the closure is here);
 * for switch and boot, point the system profile at it (`nix-env -p <profile>
 * --set`, as root: a new generation, as nixos-rebuild makes); activate it
 * as root (lib/remote/scripts.ts ACTIVATE_TOPLEVEL: in the transient unit
 * nixos-rebuild-ng uses on systemd, waited for).
 */
export function directDeployArgvs(target: RemoteHost, toplevel: string, goal: Goal, profile: string): { copy?: string[]; setProfile?: string[]; activate: string[] } {
  return {
    ...(target.local ? {} : { copy: copyToArgv(target, [toplevel], { substituteOnDestination: true }) }),
    ...(goal === 'switch' || goal === 'boot' ? { setProfile: remoteArgv(target, ['nix-env', '-p', profile, '--set', toplevel], { asRoot: true }) } : {}),
    activate: remoteArgv(target, ['sh', '-c', ACTIVATE_TOPLEVEL, 'avalanche-activate', toplevel, goal], { asRoot: true }),
  };
}

/** nixos-rebuild and `nix copy` reach hosts with ssh: the same options as ours, through NIX_SSHOPTS. */
export function sshEnv(host: RemoteHost): Record<string, string> {
  return { NIX_SSHOPTS: nixSshOpts(host) };
}
