/**
 * What the end-to-end tests ask of the lab: run the real entry points as the
 * orchestrator's user on a coordinator (LAB_COORDINATOR: hawk, the default,
 * or calypso), read the hosts' state.
 *
 * A container's root filesystem is its overlay mount, $LAB_DIR/<host>/root on
 * this machine: files the host writes (profiles, logs, authorized_keys) are
 * read and written there; what lives on its tmpfs /run (/run/current-system)
 * through /proc/<its PID 1>/root.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { ZxExecutor } from '../../lib/exec/zx-executor.ts';
import type { CommandResult } from '../../lib/exec/types.ts';
import { repoRoot } from '../helpers/fixtures.ts';
import { type BuildRecord, parseBuildsLog } from '../lab/builds-log.ts';

export type { BuildRecord } from '../lab/builds-log.ts';

const executor = new ZxExecutor();

export const lab = inject('lab');
export const labSkipReason = inject('labSkipReason');

export type Coordinator = 'hawk' | 'calypso';

/** The coordinator this test project runs the orchestrator on. */
export function coordinator(): Coordinator {
  const name = process.env.LAB_COORDINATOR ?? 'hawk';
  if (name !== 'hawk' && name !== 'calypso') throw new Error(`LAB_COORDINATOR must be hawk or calypso, got ${name}`);
  return name;
}

/**
 * The deploy method of a lab run whose inventory names none (the lab's own do
 * not: test/lab/write-inventory.mjs), as the preflight probe chooses it
 * (lib/nix/deploy-method.ts): direct from hawk (its bash-era nixos-rebuild
 * has no --store-path), nixos-rebuild --store-path from calypso (ng).
 */
export function defaultDeployMethod(): 'direct' | 'store-path' {
  return coordinator() === 'hawk' ? 'direct' : 'store-path';
}

function env(): Record<string, string> {
  if (!lab) throw new Error('no lab');
  return { ...lab.env, CI: 'true', LAB_COORDINATOR: coordinator() };
}

export function labPath(...parts: string[]): string {
  return join(lab!.dir, ...parts);
}

/**
 * A path in a lab host's root filesystem, seen from this machine. For hawk:
 * what a deploy wrote in its namespaces (/run, the system profile, the
 * deploy's state, /var/lib/lab; test/lab/hawk-ns.sh), nothing else.
 */
export function hostPath(host: string, ...parts: string[]): string {
  return join(lab!.dir, host, 'root', ...parts);
}

/** The inventory for the current coordinator ($LAB_DIR/hosts.json or hosts-calypso.json). */
export function inventoryPath(): string {
  return labPath(coordinator() === 'hawk' ? 'hosts.json' : 'hosts-calypso.json');
}

/**
 * The whole lab fleet's inventory for a coordinator (default: the current one):
 * $LAB_DIR/hosts-fleet.json (on hawk) or hosts-fleet-calypso.json (on calypso,
 * visible there at the same path): the opis (aarch64-linux) plus `calypso`, an
 * x86_64-linux target (deploy user, the deploy key, no builder, tags x86,
 * coordinator, lab). On calypso, calypso is the machine the orchestrator runs on.
 */
export function fleetInventoryPath(on: Coordinator = coordinator()): string {
  return labPath(on === 'hawk' ? 'hosts-fleet.json' : 'hosts-fleet-calypso.json');
}

/** Where the coordinator's runs keep their reports (writable by its avl, visible at the same path there). */
export function reportDir(): string {
  return coordinator() === 'hawk' ? labPath('runs/hawk') : labPath('shared/calypso/runs');
}

/** A directory both coordinators see at the same path, for inventories the tests write. */
export function inventoriesDir(): string {
  return labPath('shared/inventories');
}

/** argv that runs `argv` as avl on the current coordinator (exec'd all the way: signals reach it). */
export function coordinatorArgv(argv: readonly string[]): string[] {
  return ['bash', join(repoRoot, 'test/lab/as-coordinator.sh'), coordinator(), '--', ...argv];
}

export function scriptArgv(script: 'deploy' | 'deploy-all' | 'rollback', args: readonly string[], inventory = inventoryPath()): string[] {
  return coordinatorArgv([join(repoRoot, 'node_modules/.bin/tsx'), join(repoRoot, 'scripts', `${script}.ts`), '--inventory', inventory, '--report-dir', reportDir(), ...args]);
}

/**
 * Runs scripts/<script>.ts as a user would on the coordinator, against the
 * lab inventory (or another one). `login`: on calypso, in its PID namespace
 * too, as after a login there (test/lab/as-coordinator.sh LAB_LOGIN: what a
 * run that activates calypso itself needs; signals to it do not reach the run).
 */
export async function runScript(
  script: 'deploy' | 'deploy-all' | 'rollback',
  args: readonly string[],
  options: { inventory?: string; login?: boolean } = {},
): Promise<CommandResult & { json: any }> {
  const result = await executor.run({
    argv: scriptArgv(script, args, options.inventory),
    env: { ...env(), ...(options.login ? { LAB_LOGIN: '1' } : {}) },
    timeoutMs: 170_000,
  });
  let json: any;
  if (args.includes('--json')) {
    try {
      json = JSON.parse(result.stdout);
    } catch {
      throw new Error(`no JSON on stdout (exit ${result.exitCode}):\n${result.stdout}\n${result.stderr}`);
    }
  }
  return { ...result, json };
}

/** Runs any argv as avl on the current coordinator (doctor, just). */
export function runOnCoordinator(argv: readonly string[], timeoutMs = 60_000): Promise<CommandResult> {
  return executor.run({ argv: coordinatorArgv(argv), env: env(), timeoutMs });
}

export function labEnv(): Record<string, string> {
  return env();
}

/** A new revision of the fleet: new kernel, new toplevels (and the faults flake.sh knows). */
export async function newGeneration(
  label: string,
  options: {
    failActivation?: readonly string[];
    brokenUnit?: readonly string[];
    unitDies?: readonly string[];
    restartSshd?: readonly string[];
    /** hosts whose new toplevel does not boot: the lab bootloader falls back to the previous generation (flake.sh --boot-falls-back) */
    bootFallsBack?: readonly string[];
    activationSeconds?: number;
    /** how long the kernel takes to build (default: the lab's) */
    kernelSeconds?: number;
    /** the kernel's version (default: flake.sh's, {@link kernelName}) */
    kernelVersion?: string;
    /** extra packages in every toplevel's closure, `NAME-VERSION[:KIB]` (flake.sh --packages) */
    packages?: readonly string[];
    /**
     * hosts with a kernel of their own version (flake.sh --board-kernel), e.g.
     * `{ opi01: '6.6.1', opi02: '6.7.1' }`: a kernel per version and system,
     * named {@link kernelNameOf}; hosts of one system naming one version share it
     */
    boardKernels?: Readonly<Record<string, string>>;
  } = {},
): Promise<void> {
  const argv = ['bash', join(repoRoot, 'test/lab/flake.sh'), '--generation', revision(label)];
  if (options.kernelVersion) argv.push('--kernel-version', options.kernelVersion);
  if (options.packages?.length) argv.push('--packages', options.packages.join(' '));
  const boardKernels = Object.entries(options.boardKernels ?? {});
  if (boardKernels.length) argv.push('--board-kernel', boardKernels.map(([host, version]) => `${host}=${version}`).join(' '));
  if (options.failActivation?.length) argv.push('--fail-activation', options.failActivation.join(' '));
  if (options.brokenUnit?.length) argv.push('--broken-unit', options.brokenUnit.join(' '));
  if (options.unitDies?.length) argv.push('--unit-dies', options.unitDies.join(' '));
  if (options.restartSshd?.length) argv.push('--restart-sshd', options.restartSshd.join(' '));
  if (options.bootFallsBack?.length) argv.push('--boot-falls-back', options.bootFallsBack.join(' '));
  const extra: Record<string, string> = {
    ...(options.activationSeconds === undefined ? {} : { LAB_ACTIVATION_SECONDS: String(options.activationSeconds) }),
    ...(options.kernelSeconds === undefined ? {} : { LAB_KERNEL_SECONDS: String(options.kernelSeconds) }),
  };
  const result = await executor.run({ argv, env: { ...env(), ...extra }, timeoutMs: 30_000 });
  if (result.exitCode !== 0) throw new Error(`flake.sh failed: ${result.stderr}`);
}

/** Runs a command as root on hawk, with hawk's Nix settings (its daemon). */
export function asHawk(argv: readonly string[]): Promise<CommandResult> {
  return executor.run({ argv, env: env(), timeoutMs: 60_000 });
}

/** PID (here) of a lab host's systemd (an opi or calypso), PID 1 in its container; undefined while it is down. */
export function leaderPid(host: string): number | undefined {
  try {
    const line = readFileSync(labPath(host, 'cgroups'), 'utf8').split('\n').find((l) => l.startsWith('unified '));
    const pid = Number(readFileSync(`${line!.slice('unified '.length)}/payload/init.scope/cgroup.procs`, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Runs argv as root inside a lab host (an opi or calypso; all its namespaces), as the lab inspects hosts: never over SSH. */
export function inHost(host: string, argv: readonly string[], timeoutMs = 30_000): Promise<CommandResult> {
  const pid = leaderPid(host);
  if (pid === undefined) throw new Error(`${host} is not running`);
  return executor.run({ argv: ['nsenter', '-t', String(pid), '-m', '-u', '-i', '-n', '-p', '--', ...argv], env: {}, timeoutMs });
}

function lines(path: string): string[] {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
}

function buildLines(): BuildRecord[] {
  return parseBuildsLog(lines(labPath('shared/builds.log')));
}

/** Every build the lab ran, with where and when (builds.log, oldest first). */
export function buildRecords(): BuildRecord[] {
  return buildLines();
}

/** This project's builds of revision `label`, with where and when. */
export function buildRecordsOf(label: string): BuildRecord[] {
  return buildLines().filter((b) => b.generation === revision(label));
}

/**
 * Whether two builds ran at the same time for a while: each started before
 * the other ended. Throws if a record has no times (a line written before
 * builds.log had them).
 */
export function overlapped(a: BuildRecord, b: BuildRecord): boolean {
  for (const r of [a, b]) {
    if (!Number.isFinite(r.start) || !Number.isFinite(r.end)) throw new Error(`builds.log: no start/end times for ${r.host} ${r.name} ${r.generation}`);
  }
  return a.start < b.end && b.start < a.end;
}

/** `<host> <derivation name>` for every build the lab ever ran (whichever host built it). */
export function builds(): { host: string; name: string }[] {
  return buildLines().map(({ host, name }) => ({ host, name }));
}

/**
 * A fleet revision's label as this project writes it: the two projects share
 * one lab, so each qualifies its labels with its coordinator, or the second
 * would find the first's revision already built, cached and activated.
 */
export function revision(label: string): string {
  return `${label}.${coordinator()}`;
}

/** Builds of this project's revision `label` (builds.log's generation column). */
export function buildsOf(label: string): { host: string; name: string }[] {
  return buildLines()
    .filter((b) => b.generation === revision(label))
    .map(({ host, name }) => ({ host, name }));
}

/** The kernel's derivation name in revision `label` when flake.sh chose its version: `linux-6.1.<generation>`. */
export function kernelName(label: string): string {
  return `linux-6.1.${revision(label)}`;
}

/** calypso's and hawk's (x86_64) kernel's derivation name in revision `label` when flake.sh chose its version. */
export function x86KernelName(label: string): string {
  return kernelNameOf(`6.1.${revision(label)}`, 'x86_64-linux');
}

/** A kernel's derivation name by its version (--kernel-version, --board-kernel): `linux-<V>` (aarch64), `linux-x86_64-<V>`. */
export function kernelNameOf(version: string, system: 'aarch64-linux' | 'x86_64-linux' = 'aarch64-linux'): string {
  return system === 'x86_64-linux' ? `linux-x86_64-${version}` : `linux-${version}`;
}

/** A host's toplevel name in revision `label`: `nixos-system-<host>-25.05.lab-<generation>` (as NixOS's, ending in its version). */
export function toplevelName(host: string, label: string): string {
  return `nixos-system-${host}-25.05.lab-${revision(label)}`;
}

/** Whether `host` ever activated this project's revision `label`. */
export function activated(host: string, label: string): boolean {
  return activations(host).some((a) => a.toplevel.endsWith(`-${revision(label)}`));
}

/** The host's /var/lib/lab/activations.log: one line per switch-to-configuration run. */
export function activations(host: string): { goal: string; toplevel: string }[] {
  return lines(hostPath(host, 'var/lib/lab/activations.log')).map((line) => {
    const [, goal, toplevel] = line.split(' ');
    return { goal: goal!, toplevel: toplevel! };
  });
}

function link(path: string): string | undefined {
  try {
    const target = readlinkSync(path);
    // The system profile links to system-N-link, which links to the store path.
    return target.startsWith('/nix/store/') ? target : link(join(path, '..', target));
  } catch {
    return undefined;
  }
}

/** What /nix/var/nix/profiles/system points at on that host. */
export function systemProfile(host: string): string | undefined {
  return link(hostPath(host, 'nix/var/nix/profiles/system'));
}

/**
 * What the host is running: its /run/current-system (undefined while it is
 * down or never activated). hawk's is in its namespaces' /run, whose writes
 * land in $LAB_DIR/hawk/root/run (test/lab/hawk-ns.sh).
 */
export function currentSystem(host: string): string | undefined {
  if (host === 'hawk') return link(hostPath('hawk', 'run/current-system'));
  const pid = leaderPid(host);
  return pid === undefined ? undefined : link(`/proc/${pid}/root/run/current-system`);
}

export function cacheRequests(): { client: string; method: string; path: string; status: string }[] {
  return lines(labPath('cache-access.log')).map((line) => {
    const [, client, method, path, status] = line.split(' ');
    return { client: client!, method: method!, path: path!, status: status! };
  });
}

export function hostAddress(host: string): string {
  if (host === 'hawk') return '10.213.77.1';
  if (host === 'calypso') return '10.213.77.2';
  return `10.213.77.${10 + Number(host.slice(3))}`;
}

export type Fault = 'sshd-down' | 'sshd-up' | 'link-down' | 'link-up' | 'cache-down' | 'cache-up' | 'reboot' | 'poweroff' | 'boot' | 'distrust' | 'trust';

/** Injects or heals a fault (test/lab/fault.sh). */
export async function fault(kind: Fault, host?: string): Promise<void> {
  const result = await executor.run({ argv: ['bash', join(repoRoot, 'test/lab/fault.sh'), kind, ...(host ? [host] : [])], env: env(), timeoutMs: 90_000 });
  if (result.exitCode !== 0) throw new Error(`fault.sh ${kind} ${host ?? ''} failed: ${result.stderr}`);
}

/**
 * A copy of the current coordinator's inventory (or of `from`, e.g.
 * {@link fleetInventoryPath}), changed by `edit`, where the coordinator can
 * read it; returns its path.
 */
export function inventoryCopy(name: string, edit: (json: any) => void, from = inventoryPath()): string {
  const json = JSON.parse(readFileSync(from, 'utf8'));
  edit(json);
  const path = join(inventoriesDir(), `hosts-${coordinator()}-${name}.json`);
  writeFileSync(path, JSON.stringify(json, null, 2));
  return path;
}

/** Polls until `check` holds; fails after `timeoutMs`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** How many connections hawk's sshd (the lab's, on 10.213.77.1) accepted so far, whoever logged in or failed to (its log; VERBOSE). */
export function hawkSshConnections(): number {
  return lines(labPath('hawk-sshd/sshd.log')).filter((line) => line.includes('Connection from')).length;
}

/** How many logins a host's sshd accepted so far (its journal; sshd logs VERBOSE). */
export function acceptedLogins(host: string): number {
  const pid = leaderPid(host);
  if (pid === undefined) throw new Error(`${host} is not running`);
  const journal = execFileSync('nsenter', ['-t', String(pid), '-m', '-u', '-i', '-n', '-p', '--', 'journalctl', '--no-pager', '-o', 'cat', '-u', 'ssh.service'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  return journal.split('\n').filter((line) => line.includes('Accepted publickey')).length;
}
