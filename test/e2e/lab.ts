/** What the end-to-end tests ask of the lab: run the real entry points, read the hosts' state. */
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
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

/** Runs scripts/<script>.ts as a user would, against the lab inventory. */
export async function runScript(script: 'deploy' | 'deploy-all', args: readonly string[]): Promise<CommandResult & { json: any }> {
  const result = await executor.run({
    argv: [join(repoRoot, 'node_modules/.bin/tsx'), join(repoRoot, 'scripts', `${script}.ts`), '--inventory', inventoryPath(), '--report-dir', labPath('runs'), ...args],
    env: env(),
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

/** A new revision of the fleet: new kernel, new toplevels. */
export async function newGeneration(label: string, options: { failActivation?: readonly string[] } = {}): Promise<void> {
  const argv = ['bash', join(repoRoot, 'test/lab/flake.sh'), '--generation', label];
  if (options.failActivation?.length) argv.push('--fail-activation', options.failActivation.join(' '));
  const result = await executor.run({ argv, env: env(), timeoutMs: 30_000 });
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
