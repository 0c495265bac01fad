/** What the end-to-end tests ask of the lab: run the real entry points, read the hosts' state. */
import { existsSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { ZxExecutor } from '../../lib/exec/zx-executor.ts';
import type { CommandResult } from '../../lib/exec/types.ts';
import { repoRoot } from '../helpers/fixtures.ts';

const executor = new ZxExecutor();

export const lab = inject('lab');
export const labSkipReason = inject('labSkipReason');

function env(): Record<string, string> {
  if (!lab) throw new Error('no lab');
  return { ...lab.env, CI: 'true' };
}

export function labPath(...parts: string[]): string {
  return join(lab!.dir, ...parts);
}

export function inventoryPath(): string {
  return labPath('hosts.json');
}

export function scriptArgv(script: 'deploy' | 'deploy-all', args: readonly string[], inventory = inventoryPath()): string[] {
  return [join(repoRoot, 'node_modules/.bin/tsx'), join(repoRoot, 'scripts', `${script}.ts`), '--inventory', inventory, '--report-dir', labPath('runs'), ...args];
}

/** Runs scripts/<script>.ts as a user would, against the lab inventory (or another one). */
export async function runScript(
  script: 'deploy' | 'deploy-all',
  args: readonly string[],
  options: { inventory?: string } = {},
): Promise<CommandResult & { json: any }> {
  const result = await executor.run({ argv: scriptArgv(script, args, options.inventory), env: env(), timeoutMs: 170_000 });
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

export function labEnv(): Record<string, string> {
  return env();
}

/** A new revision of the fleet: new kernel, new toplevels. */
export async function newGeneration(
  label: string,
  options: { failActivation?: readonly string[]; activationSeconds?: number } = {},
): Promise<void> {
  const argv = ['bash', join(repoRoot, 'test/lab/flake.sh'), '--generation', label];
  if (options.failActivation?.length) argv.push('--fail-activation', options.failActivation.join(' '));
  const extra: Record<string, string> = options.activationSeconds === undefined ? {} : { LAB_ACTIVATION_SECONDS: String(options.activationSeconds) };
  const result = await executor.run({ argv, env: { ...env(), ...extra }, timeoutMs: 30_000 });
  if (result.exitCode !== 0) throw new Error(`flake.sh failed: ${result.stderr}`);
}

/** Runs a command as hawk (the lab's Nix settings). */
export function asHawk(argv: readonly string[]): Promise<CommandResult> {
  return executor.run({ argv, env: env(), timeoutMs: 60_000 });
}

function lines(path: string): string[] {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
}

/** `<host> <derivation name>` for every build the lab ever ran. */
export function builds(): { host: string; name: string }[] {
  return lines(labPath('builds.log')).map((line) => {
    const [host, name] = line.split(' ');
    return { host: host!, name: name! };
  });
}

export function buildsOf(generation: string): { host: string; name: string }[] {
  return builds().filter((b) => b.name.endsWith(`-${generation}`));
}

export function activations(host: string): { goal: string; toplevel: string }[] {
  return lines(labPath(host, 'nix/var/lab/activations.log')).map((line) => {
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
  return link(labPath(host, 'nix/var/nix/profiles/system'));
}

/** What the host is running (the lab's /run/current-system). */
export function currentSystem(host: string): string | undefined {
  return link(labPath(host, 'nix/var/lab/current-system'));
}

export function cacheRequests(): { client: string; method: string; path: string; status: string }[] {
  return lines(labPath('cache-access.log')).map((line) => {
    const [, client, method, path, status] = line.split(' ');
    return { client: client!, method: method!, path: path!, status: status! };
  });
}

export function hostAddress(host: string): string {
  return `10.213.77.${10 + Number(host.slice(3))}`;
}

/** Injects or heals a fault (test/lab/fault.sh). */
export async function fault(kind: 'sshd-down' | 'sshd-up' | 'link-down' | 'link-up' | 'cache-down' | 'cache-up', host?: string): Promise<void> {
  const result = await executor.run({ argv: ['bash', join(repoRoot, 'test/lab/fault.sh'), kind, ...(host ? [host] : [])], env: env(), timeoutMs: 30_000 });
  if (result.exitCode !== 0) throw new Error(`fault.sh ${kind} ${host ?? ''} failed: ${result.stderr}`);
}

/** A copy of the lab inventory, changed by `edit`; returns its path. */
export function inventoryCopy(name: string, edit: (json: any) => void): string {
  const json = JSON.parse(readFileSync(inventoryPath(), 'utf8'));
  edit(json);
  const path = labPath(`hosts-${name}.json`);
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

/** How many logins a host's sshd accepted so far (its log is VERBOSE). */
export function acceptedLogins(host: string): number {
  return lines(labPath(host, 'sshd.log')).filter((line) => line.includes('Accepted publickey')).length;
}
