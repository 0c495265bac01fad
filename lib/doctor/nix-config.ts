/**
 * The Nix settings that decide where a derivation may build: Nix builds a
 * derivation locally only when its system is `system` or listed in
 * `extra-platforms`. Read through lib/nix/config.ts (`nix config show
 * --json`, falling back to `nix show-config --json` on a Nix that does not
 * know that subcommand).
 */
import { parseNixSettings, stringListSetting, stringSetting } from '../nix/config.ts';

export interface NixBuildConfig {
  readonly system: string;
  readonly extraPlatforms: readonly string[];
}

/** `system` and `extra-platforms` from Nix's configuration JSON; throws when it has no `system`. */
export function parseNixConfig(stdout: string): NixBuildConfig {
  const settings = parseNixSettings(stdout);
  const system = stringSetting(settings, 'system');
  if (system === undefined) throw new Error('nix config show --json has no "system"');
  return { system, extraPlatforms: stringListSetting(settings, 'extra-platforms') };
}

export function platforms(config: NixBuildConfig): string[] {
  return [config.system, ...config.extraPlatforms];
}
