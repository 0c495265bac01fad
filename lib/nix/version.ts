/**
 * The version of the Nix that runs here, and the one place that knows how
 * that version names a derivation's output on the command line.
 *
 * The seed build builds the derivations the evaluate stage instantiated
 * (no second evaluation of the flake). How a `.drv` installable is read
 * changed twice:
 *   - Before Nix 2.13: a `.drv` path means its outputs; `drv!out` and
 *     `drv^out` are refused (verified here with 2.8.0: "is not a valid URL"
 *     / "does not contain a flake.nix"). 2.9 brought `^` for flake
 *     installables only (`nixpkgs#glibc^dev`).
 *   - Nix 2.13 added `^` for store paths (`/nix/store/…drv^out`).
 *   - Nix 2.15 removed the `.drv` special case: a bare `.drv` path is the
 *     derivation file itself (an opaque path: "built" without building
 *     anything), so `^out` is required from there on (release notes of 2.15).
 * Lix reports `nix (Lix, like Nix) 2.9x`: `^` syntax too.
 */
import type { Executor } from '../exec/types.ts';

export interface NixVersion {
  /** as printed, e.g. `nix (Nix) 2.8.0` */
  readonly text: string;
  readonly major: number;
  readonly minor: number;
}

/** Reads `nix --version` output; undefined when it names no version. */
export function parseNixVersion(text: string): NixVersion | undefined {
  const line = text.trim().split('\n')[0] ?? '';
  const match = /\b(\d+)\.(\d+)(?:\.\d+)?/.exec(line);
  if (!match) return undefined;
  return { text: line, major: Number(match[1]), minor: Number(match[2]) };
}

/**
 * `nix --version` on this machine (bounded by `timeoutMs`). Undefined when
 * nix cannot be run or says no version: the plan then assumes a current
 * Nix, and preflight's own Nix checks say what is wrong.
 */
export async function probeNixVersion(executor: Executor, timeoutMs: number): Promise<NixVersion | undefined> {
  const result = await executor.run({ argv: ['nix', '--version'], timeoutMs });
  return result.exitCode === 0 ? parseNixVersion(result.stdout) : undefined;
}

/** Whether this Nix knows `<drv>^<output>` for a store path (2.13 and later; assumed when the version is unknown). */
function knowsCaretSyntax(nix: NixVersion | undefined): boolean {
  return nix === undefined || nix.major > 2 || (nix.major === 2 && nix.minor >= 13);
}

/**
 * The installable that builds `output` of the derivation at `drvPath` (a
 * store path or a placeholder for one) with the given Nix: `<drv>^<output>`,
 * or the bare `.drv` path before Nix 2.13, which builds every output (a
 * NixOS toplevel has only `out`).
 */
export function derivationOutputInstallable(drvPath: string, output: string, nix: NixVersion | undefined): string {
  return knowsCaretSyntax(nix) ? `${drvPath}^${output}` : drvPath;
}
