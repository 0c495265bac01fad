/** Nix system strings (`<cpu>-<kernel>`, as in `system` / `extra-platforms`). */

const NIX_CPU: Readonly<Record<string, string>> = { x64: 'x86_64', arm64: 'aarch64', ia32: 'i686' };

/**
 * This machine's Nix system, from Node's `process.arch` and
 * `process.platform` (x64 → x86_64, arm64 → aarch64): what nixos-rebuild
 * running here would re-exec for, and what Nix builds natively.
 */
export function localNixSystem(arch: string = process.arch, platform: string = process.platform): string {
  return `${NIX_CPU[arch] ?? arch}-${platform}`;
}
