/**
 * The Nix settings that decide where a derivation may build: Nix builds a
 * derivation locally only when its system is `system` or listed in
 * `extra-platforms`. Read with `nix show-config --json`, turning on the
 * nix-command feature for this one call so it also works on machines that
 * have not enabled it.
 */
export interface NixBuildConfig {
  readonly system: string;
  readonly extraPlatforms: readonly string[];
}

export function nixConfigArgv(): string[] {
  return ['nix', '--extra-experimental-features', 'nix-command', 'show-config', '--json'];
}

export function parseNixConfig(stdout: string): NixBuildConfig {
  const settings = JSON.parse(stdout) as Record<string, { value?: unknown } | undefined>;
  const system = settings.system?.value;
  const extra = settings['extra-platforms']?.value;
  if (typeof system !== 'string') throw new Error('nix show-config --json has no "system"');
  return { system, extraPlatforms: Array.isArray(extra) ? extra.filter((p): p is string => typeof p === 'string') : [] };
}

export function platforms(config: NixBuildConfig): string[] {
  return [config.system, ...config.extraPlatforms];
}
