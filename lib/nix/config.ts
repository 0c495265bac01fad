/**
 * The one place that knows how to read Nix's configuration: the command
 * (`nix config show --json`, or `nix show-config --json` on a Nix that does
 * not know the former) and its JSON.
 *
 * Nix 2.20 renamed `nix show-config` to `nix config show` (the old name stays
 * as a deprecated alias). Which one a Nix knows is found out by asking, not
 * from its version string: Lix and other distributions number and spell
 * their versions differently. Every command turns on the nix-command
 * experimental feature for itself, so it also works where it is not enabled.
 */
import type { CommandResult } from '../exec/types.ts';
import { stripAnsi } from './build-log.ts';

/** `nix` with the nix-command feature turned on for this one call, then `args`. */
export function nixCommandArgv(...args: string[]): string[] {
  return ['nix', '--extra-experimental-features', 'nix-command', ...args];
}

/** Nix 2.20 on (and Lix): `nix config show --json`. */
export const CONFIG_SHOW_ARGV: readonly string[] = nixCommandArgv('config', 'show', '--json');
/** Before Nix 2.20: `nix show-config --json`. */
export const SHOW_CONFIG_ARGV: readonly string[] = nixCommandArgv('show-config', '--json');

/**
 * Whether a `nix` command failed because this Nix does not know the
 * subcommand: a usage error (exit 1) such as Nix 2.8's "error: 'config' is
 * not a recognised command" (the wording of Nix's MultiCommand, kept by Lix),
 * or an "unrecognised"/"unknown command" of other builds. Any other failure
 * (timeout, ssh, a broken nix.conf) is not this.
 */
export function isUnknownSubcommand(result: Pick<CommandResult, 'exitCode' | 'timedOut' | 'stdout' | 'stderr'>): boolean {
  if (result.exitCode === 0 || result.exitCode === null || result.timedOut) return false;
  const output = stripAnsi(`${result.stderr}\n${result.stdout}`);
  return /is not a recogni[sz]ed command|unrecogni[sz]ed (?:sub)?command|unknown (?:sub)?command/i.test(output);
}

/**
 * Reads the configuration with `run` (which may wrap the argv, e.g. in ssh):
 * `nix config show --json` first, then `nix show-config --json` only if the
 * first failed as isUnknownSubcommand says. Returns every run made, in order:
 * the last one is the answer; its failure is the caller's to report.
 */
export async function readNixConfig<R extends { readonly result: CommandResult }>(
  run: (argv: readonly string[]) => Promise<R>,
): Promise<[R] | [R, R]> {
  return readNixConfigWith(run, CONFIG_SHOW_ARGV, SHOW_CONFIG_ARGV);
}

/** {@link readNixConfig} with the two commands given (a plan's, with their bounds). */
export async function readNixConfigWith<C, R extends { readonly result: CommandResult }>(run: (command: C) => Promise<R>, configShow: C, showConfig: C): Promise<[R] | [R, R]> {
  const first = await run(configShow);
  if (!isUnknownSubcommand(first.result)) return [first];
  return [first, await run(showConfig)];
}

/** Setting name → value, as Nix reports them (strings, numbers, booleans, lists of strings). */
export type NixSettings = Readonly<Record<string, unknown>>;

/**
 * The settings in `nix config show --json` / `nix show-config --json`
 * output: an object of `{ "<name>": { "value": …, "defaultValue": …, … } }`
 * (both commands, Nix 2.4 on). Throws on anything else.
 */
export function parseNixSettings(stdout: string): NixSettings {
  const parsed: unknown = JSON.parse(stdout);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('nix config show --json did not print an object');
  const settings: Record<string, unknown> = {};
  for (const [name, setting] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof setting === 'object' && setting !== null && 'value' in setting) settings[name] = (setting as { value: unknown }).value;
  }
  return settings;
}

/** A setting that is a string (e.g. `system`, `store`), or undefined. */
export function stringSetting(settings: NixSettings, name: string): string | undefined {
  const value = settings[name];
  return typeof value === 'string' ? value : undefined;
}

/** A setting that is a list of strings (e.g. `trusted-users`, `extra-platforms`); [] when absent. */
export function stringListSetting(settings: NixSettings, name: string): string[] {
  const value = settings[name];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return typeof value === 'string' ? value.split(/\s+/).filter((v) => v !== '') : [];
}
