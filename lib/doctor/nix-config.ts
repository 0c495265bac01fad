/**
 * The Nix settings that decide where a derivation may build: Nix builds a
 * derivation locally only when its system is `system` or listed in
 * `extra-platforms`. Read with `nix show-config --json` (`nix config show
 * --json` from Nix 2.20 on, where the old name is a deprecated alias),
 * turning on the nix-command feature for this one call so it also works on
 * machines that have not enabled it.
 */
export interface NixBuildConfig {
  readonly system: string;
  readonly extraPlatforms: readonly string[];
}

/** From `nix --version` / `nix-store --version`, e.g. "nix-store (Nix) 2.18.1"; other flavours (Lix) do not count. */
export function isNixAtLeast(versionText: string, major: number, minor: number): boolean {
  const match = /\(Nix\) (\d+)\.(\d+)/.exec(versionText);
  if (!match) return false;
  const [have, haveMinor] = [Number(match[1]), Number(match[2])];
  return have > major || (have === major && haveMinor >= minor);
}

export function nixConfigArgv(versionText: string): string[] {
  const show = isNixAtLeast(versionText, 2, 20) ? ['config', 'show'] : ['show-config'];
  return ['nix', '--extra-experimental-features', 'nix-command', ...show, '--json'];
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
