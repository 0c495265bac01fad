/**
 * The fleet as the doctor sees it through a recording executor: builders,
 * targets, the GC-root listing on hawk and the local Nix, answering as
 * healthy machines do. Tests put their own responders first to break one.
 */
import type { CommandSpec } from '../../lib/exec/types.ts';
import type { Inventory } from '../../lib/inventory/schema.ts';
import { FIXTURE_KEY, FIXTURE_TOPLEVEL, fixture, fleetInventory } from './fixtures.ts';
import type { Responder, ScriptedResponse } from './recording-executor.ts';

export const NOW = Date.UTC(2026, 0, 31, 12);
export const DAY_MS = 86_400_000;
export const ROOT_DIR = '/nix/var/nix/gcroots/arm-cache';
/** Served by the fixture narinfos; opi01 runs it. */
export const FIXTURE_DEP = '/nix/store/7kh07n14rb43dvi221pvih4c9h4iryg3-fixture-dep';

export function doctorInventory(cacheUrl: string, edit?: (json: any) => void): Inventory {
  return fleetInventory((json) => {
    json.cache.url = cacheUrl;
    json.cache.publicKey = FIXTURE_KEY;
    edit?.(json);
  });
}

/** The remote command of an ssh argv (what follows "--"), or undefined for a local command. */
export function remoteCommand(spec: CommandSpec): string | undefined {
  return spec.argv[0] === 'ssh' ? spec.argv.at(-1) : undefined;
}

/** Commands run on `destination` over ssh whose remote command starts with `prefix`. */
export function onRemote(destination: string, prefix: string, response: ScriptedResponse): Responder {
  return (spec) => (spec.argv.includes(destination) && remoteCommand(spec)?.startsWith(prefix) ? response : undefined);
}

export function listsRoots(spec: CommandSpec): boolean {
  const command = remoteCommand(spec) ?? spec.argv.join(' ');
  return command.startsWith(`find ${ROOT_DIR} `);
}

/** Commands run here (not over ssh) that start with `prefix`. */
export function localNix(prefix: string, response: ScriptedResponse): Responder {
  return (spec) => (spec.argv[0] !== 'ssh' && spec.argv.join(' ').startsWith(prefix) ? response : undefined);
}

export function rootsListing(response: ScriptedResponse): Responder {
  return (spec) => (listsRoots(spec) ? response : undefined);
}

export function rootLine(target: string, options: { ageDays?: number; dangling?: boolean } = {}): string {
  const mtime = (NOW - (options.ageDays ?? 1) * DAY_MS) / 1000;
  return `1\tl\t${options.dangling ? 'N' : 'd'}\t${mtime.toFixed(10)}\t${target.split('/').at(-1)}\t${target}`;
}

export function rootDirListing(...lines: string[]): ScriptedResponse {
  return { stdout: [`0\td\td\t${NOW / 1000}\tarm-cache\t`, ...lines].map((l) => `${l}\n`).join('') };
}

/** What a Nix before 2.20 (2.8 here, 2.18 on the builders) says to `nix config show`. */
export const CONFIG_SHOW_UNKNOWN: ScriptedResponse = { exitCode: 1, stderr: "error: 'config' is not a recognised command\nTry 'nix --help' for more information.\n" };

export function nixConfig(system: string, extraPlatforms: readonly string[] = []): ScriptedResponse {
  return { stdout: JSON.stringify({ system: { value: system }, 'extra-platforms': { value: extraPlatforms }, cores: { value: 4 } }) };
}

/** What the deploy's generation probe prints: the profile's link, where it resolves, the running system. */
export function generationOutput(storePath: string, generation = 2): ScriptedResponse {
  return { stdout: `system-${generation}-link\n${storePath}\n${storePath}\n` };
}

/** A host never deployed: no link, and readlink -f echoes the missing paths. */
export const NEVER_DEPLOYED: ScriptedResponse = { stdout: '\n/nix/var/nix/profiles/system\n/run/current-system\n' };

/** The probe is `sh -c <script> avalanche-probe <profile> <current system>`. */
export function probesGeneration(spec: CommandSpec): boolean {
  return remoteCommand(spec)?.includes(' avalanche-probe ') ?? false;
}

const hosts = ['opi01', 'opi02', 'opi03'];

/** A healthy fleet; `first` responders win. */
export function fleet(...first: Responder[]): Responder[] {
  return [
    ...first,
    rootsListing(rootDirListing(rootLine(FIXTURE_TOPLEVEL))),
    ...hosts.flatMap((host) => [
      onRemote(`nix-builder@${host}.internal`, 'nix-store --version', { stdout: 'nix-store (Nix) 2.18.1\n' }),
      onRemote(`nix-builder@${host}.internal`, 'nix --extra-experimental-features nix-command config show', CONFIG_SHOW_UNKNOWN),
      onRemote(`nix-builder@${host}.internal`, 'nix --extra-experimental-features nix-command ', nixConfig('aarch64-linux')),
      onRemote(`deploy@${host}.internal`, 'sh -c', generationOutput(host === 'opi01' ? FIXTURE_TOPLEVEL : FIXTURE_DEP)),
    ]),
    localNix('nix --version', { stdout: 'nix (Nix) 2.8.0\n' }),
    localNix('nixos-rebuild --help', { stdout: fixture('nixos-rebuild/ng.help') }),
    localNix('nix --extra-experimental-features nix-command config show', CONFIG_SHOW_UNKNOWN),
    localNix('nix --extra-experimental-features nix-command show-config', nixConfig('x86_64-linux', ['i686-linux'])),
  ];
}
