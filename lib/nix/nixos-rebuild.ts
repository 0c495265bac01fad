/**
 * Which nixos-rebuild the configured command is, and the flags to give it.
 *
 * NixOS has shipped two: the bash-era `nixos-rebuild` (nixpkgs'
 * nixos-rebuild.sh; `--help` runs `man nixos-rebuild`, an unknown flag is
 * "unknown option", exit 1) and nixos-rebuild-ng (Python argparse; `--help`
 * prints `usage: nixos-rebuild [-h] …`, an unknown flag is "unrecognized
 * arguments", exit 2). They differ exactly where the deploy needs them:
 *   - re-exec: both re-exec the *target's* nixos-rebuild unless told not to;
 *     from an x86_64 coordinator to an aarch64 target that dies with
 *     "Exec format error". bash-era knows only `--fast`; ng knows `--fast`
 *     in every version and `--no-reexec` in later ones.
 *   - sudo for a non-root target user: bash-era `--use-remote-sudo`; ng
 *     `--sudo` (and `--use-remote-sudo` as a deprecated alias).
 *   - `--store-path`: recent ng only.
 * So the deploy reads `--help` once (feature detection, not version
 * numbers) and passes only what that tool accepts.
 */
import { z } from 'zod';
import type { Executor } from '../exec/types.ts';
import { outputTail } from '../exec/types.ts';

export const rebuildToolSchema = z.object({
  command: z.array(z.string()),
  /** false: the command could not be run at all */
  found: z.boolean(),
  flavour: z.enum(['bash', 'ng', 'unknown']),
  /** every long flag its --help names, sorted */
  flags: z.array(z.string()),
  /** why it could not be read, when it could not */
  error: z.string().optional(),
});
export type RebuildTool = z.infer<typeof rebuildToolSchema>;
export type RebuildFlavour = RebuildTool['flavour'];

/** Accepted by the bash-era tool and by every nixos-rebuild-ng: the safe choice when the flavour is unknown. */
const UNIVERSAL_FLAGS = ['--fast', '--use-remote-sudo'];

/** Flags whose job the deploy does itself: given in `extraArgs`, they are replaced by what this tool knows. */
export const MANAGED_FLAGS = {
  reexec: ['--no-reexec', '--fast'],
  sudo: ['--sudo', '--use-remote-sudo'],
} as const;

export function rebuildHelpArgv(command: readonly string[]): string[] {
  return [...command, '--help'];
}

/** Options only nixos-rebuild-ng has: their presence in a help text identifies it, whatever the format. */
const NG_ONLY_FLAGS = ['--no-reexec', '--sudo', '--store-path', '--ask-sudo-password', '--elevate'];

/**
 * Reads a `--help` text. man output may carry overstrike formatting
 * (`N\bN`), removed first. nixos-rebuild-ng prints argparse's `usage:
 * nixos-rebuild [...]` (or, packaged on NixOS, its scdoc man page), and
 * names flags only it has (`--no-reexec`, `--sudo`, `--store-path`); the
 * bash-era tool's help is its man page (`nixos-rebuild(8)`), naming
 * `--use-remote-sudo` and `--fast` and none of those.
 */
export function parseRebuildHelp(command: readonly string[], text: string): RebuildTool {
  const plain = text.replace(/.\u0008/g, '');
  const flags = [...new Set(plain.match(/(?<![\w-])--[a-z][a-z0-9-]*/g) ?? [])].sort();
  const argparse = /^usage: \S*nixos-rebuild\b/m.test(plain);
  const manPage = /nixos-rebuild\s*\(8\)/i.test(plain);
  const flavour: RebuildFlavour =
    argparse || NG_ONLY_FLAGS.some((flag) => flags.includes(flag)) ? 'ng'
    : manPage || flags.includes('--use-remote-sudo') ? 'bash'
    : 'unknown';
  return { command: [...command], found: true, flavour, flags };
}

/**
 * Runs `<command> --help` on this machine (bounded by `timeoutMs`) and
 * reads it. A command that cannot be started is `found: false`; one whose
 * help says nothing recognisable is flavour `unknown` (the deploy then uses
 * only flags both flavours accept).
 */
export async function probeRebuildTool(executor: Executor, command: readonly string[], timeoutMs: number): Promise<RebuildTool> {
  const result = await executor.run({ argv: rebuildHelpArgv(command), timeoutMs, env: { MANPAGER: 'cat', PAGER: 'cat' } });
  const text = `${result.stdout}\n${result.stderr}`;
  const notFound = result.exitCode === 127 || /ENOENT|command not found|No such file/.test(result.stderr) && result.stdout.trim() === '';
  if (notFound) {
    return { command: [...command], found: false, flavour: 'unknown', flags: [], error: outputTail(result, 1)[0] ?? `exit ${result.exitCode}` };
  }
  const tool = parseRebuildHelp(command, text);
  if (tool.flavour === 'unknown') return { ...tool, error: `its --help said nothing recognisable (${outputTail(result, 1)[0] ?? `exit ${result.exitCode}`})` };
  return tool;
}

/** What to do when the configured nixos-rebuild cannot be run here (preflight and doctor). */
export const REBUILD_NOT_FOUND_HINT = "Run the deploy where NixOS's nixos-rebuild is installed, or set nixosRebuild.command to its path.";

/** Used when nothing was probed (unit tests, a plan made without the tool): flavour unknown. */
export function unprobedRebuildTool(command: readonly string[]): RebuildTool {
  return { command: [...command], found: true, flavour: 'unknown', flags: [] };
}

export interface RebuildFlags {
  /** the sudo flag for a non-root target user, if one is needed and known */
  readonly sudo?: string | undefined;
  /** the flag that stops the re-exec (always, when the tool knows one; required across systems) */
  readonly noReexec?: string | undefined;
  /** the inventory's extraArgs that remain (managed flags removed) */
  readonly extraArgs: readonly string[];
  /** what cannot work with this tool: preflight fails on these */
  readonly problems: readonly string[];
}

function knows(tool: RebuildTool, flag: string): boolean {
  return tool.flavour === 'unknown' ? UNIVERSAL_FLAGS.includes(flag) : tool.flags.includes(flag);
}

export function describeTool(tool: RebuildTool): string {
  const name = tool.command.join(' ');
  if (!tool.found) return `${name}: not found`;
  if (tool.flavour === 'unknown') return `${name}: unknown flavour`;
  return `${name}: ${tool.flavour === 'bash' ? 'bash-era nixos-rebuild' : 'nixos-rebuild-ng'}`;
}

/**
 * The flags for one target. `needsSudo`: the target user is not root.
 * `crossSystem`: this machine's system differs from the target's, so the
 * re-exec must be stopped (it is stopped anyway where the tool can: the
 * probed tool is the one whose flags were chosen). `preferredSudo` is the inventory's `sudoFlag`.
 */
export function chooseRebuildFlags(
  tool: RebuildTool,
  target: { readonly needsSudo: boolean; readonly crossSystem: boolean },
  inventory: { readonly sudoFlag?: string | undefined; readonly extraArgs: readonly string[] },
): RebuildFlags {
  const problems: string[] = [];
  const what = describeTool(tool);
  let sudo: string | undefined;
  if (target.needsSudo) {
    const candidates = inventory.sudoFlag ? [inventory.sudoFlag] : [...MANAGED_FLAGS.sudo];
    sudo = candidates.find((flag) => knows(tool, flag));
    if (!sudo) problems.push(`${what} accepts none of ${candidates.join(', ')}, needed for a non-root deploy user`);
  }
  // Always: the tool probed here is the one that must run. Re-exec'd, the target's own nixos-rebuild
  // (perhaps the other flavour) would get these flags; across systems it cannot even start here.
  const noReexec = MANAGED_FLAGS.reexec.find((flag) => knows(tool, flag));
  if (!noReexec && target.crossSystem) {
    problems.push(`${what} accepts neither --no-reexec nor --fast: it would re-exec the target's nixos-rebuild here (Exec format error)`);
  }
  const managed: readonly string[] = [...MANAGED_FLAGS.reexec, ...MANAGED_FLAGS.sudo];
  const extraArgs = inventory.extraArgs.filter((arg) => !managed.includes(arg));
  if (tool.flavour !== 'unknown') {
    for (const arg of extraArgs) {
      const flag = arg.split('=')[0]!;
      if (flag.startsWith('--') && !tool.flags.includes(flag)) problems.push(`nixosRebuild.extraArgs: ${flag} is not an option of ${what}`);
    }
  }
  return { sudo, noReexec, extraArgs, problems };
}
