/**
 * What a new system changes against the one a host runs, as `nvd diff` and
 * `nix store diff-closures` show it: packages added, removed and changed
 * (old → new versions), and the closure size before and after. The one place
 * that knows `nix store diff-closures`' output and how the closure sizes are
 * read.
 *
 * What it relies on (Nix's src/nix/diff-closures.cc, the same in 2.8 and
 * 2.26, both seen in the lab; test/fixtures/diff-closures/):
 * - a path's name is split as nixpkgs' are (DrvName: the name ends at the
 *   first `-` followed by a non-letter, the rest is the version) after an
 *   output suffix (`-bin`, `-lib`, …) is dropped; paths are grouped by name;
 * - one line per name whose versions differ or whose closure share moved by
 *   at least 8 KiB, sorted by name: `<name>: <removed> → <added>[, <size>]`
 *   or `<name>: <size>`, where a version list is `1.0, 1.1` (sorted), `∅`
 *   when empty, `ε` for an empty version;
 * - the size is `%+.1f KiB` in 2.8 and 2.26 (`+48.0 KiB`, also `+5182.5 KiB`),
 *   and `%.1f <unit>iB` in Nix's current source (renderSize: `48.0 KiB`,
 *   `1.2 MiB`, no `+`); either wrapped in ANSI colour escapes (red growth, green shrink) even when stdout is a pipe
 *   (NO_COLOR does not stop them): {@link parseDiffClosures} strips them.
 * - `nix path-info -S <path>` prints `<path>\t<closure size in bytes>` (the
 *   sum of the closure's NAR sizes, as diff-closures adds them), in 2.8 and
 *   2.26 alike (its `--json` differs: an array in 2.8, an object from 2.19).
 */
import { z } from 'zod';
import { type RemoteHost, remoteArgv } from '../remote/host.ts';
import { nixCommandArgv } from './config.ts';

export const PACKAGE_CHANGES = ['added', 'removed', 'changed', 'resized'] as const;
export type PackageChange = (typeof PACKAGE_CHANGES)[number];

export const packageDiffSchema = z.object({
  /** the package name as Nix splits it off the store path's name (`linux` of `linux-6.1.2`) */
  name: z.string(),
  /**
   * `added`: versions only the new closure has, none gone; `removed`: the
   * reverse; `changed`: versions gone and others come (`6.1.1 → 6.1.2`);
   * `resized`: the same versions, but the name's paths' size moved by at
   * least 8 KiB (a rebuild with other contents)
   */
  change: z.enum(PACKAGE_CHANGES),
  /** versions only the old closure has, sorted as Nix prints them ('' for a path without a version) */
  before: z.array(z.string()),
  /** versions only the new closure has */
  after: z.array(z.string()),
  /**
   * after − before of the name's paths' NAR sizes, in bytes, as Nix printed
   * it (rounded to 0.1 of its unit); absent when under 8 KiB, which Nix does not print
   */
  sizeDeltaBytes: z.number().int().optional(),
});
export type PackageDiff = z.infer<typeof packageDiffSchema>;

/** What a host's new system changes against the system it runs. */
export const closureDiffSchema = z.object({
  kind: z.literal('diff'),
  /** the store path the host runs (the old system) */
  before: z.string(),
  /** the new toplevel */
  after: z.string(),
  /** as `nix store diff-closures` lists them, by name */
  packages: z.array(packageDiffSchema),
  /** the closures' sizes in bytes (sums of NAR sizes, `nix path-info -S`), exact */
  closureBytes: z.object({ before: z.number().int().nonnegative(), after: z.number().int().nonnegative() }),
  /** closureBytes.after − closureBytes.before */
  sizeDeltaBytes: z.number().int(),
});
export type ClosureDiff = z.infer<typeof closureDiffSchema>;

/** A host that runs no system yet: nothing to compare the new one with. */
export const firstDeployDiffSchema = z.object({
  kind: z.literal('first-deploy'),
  /** the new toplevel */
  after: z.string(),
  closureBytes: z.object({ after: z.number().int().nonnegative() }),
});
export type FirstDeployDiff = z.infer<typeof firstDeployDiffSchema>;

/** What the closure-diff step found on a host: a diff, or a first deploy. */
export const hostClosureDiffSchema = z.discriminatedUnion('kind', [closureDiffSchema, firstDeployDiffSchema]);
export type HostClosureDiff = z.infer<typeof hostClosureDiffSchema>;

// Nix's ANSI_RED / ANSI_GREEN / ANSI_NORMAL, and any other SGR sequence.
const ANSI_SGR = /\x1b\[[0-9;]*m/g;
const SIZE = /^([+-]?\d+(?:\.\d+)?) ([KMGTPEZY])iB$/;
const UNIT_POWER: Readonly<Record<string, number>> = { K: 1, M: 2, G: 3, T: 4, P: 5, E: 6, Z: 7, Y: 8 };
const NOTHING = '∅';
const EMPTY_VERSION = 'ε';
const ARROW = ' → ';

/** `+48.0 KiB`, `48.0 KiB`, `-1.2 MiB` → bytes (rounded as Nix rounded it); undefined when it is not a size. */
function parseSize(text: string): number | undefined {
  const match = SIZE.exec(text);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * 1024 ** UNIT_POWER[match[2]!]!);
}

/** `1.0, 1.1` → ['1.0', '1.1']; `∅` → []; `ε` → ['']. */
function parseVersions(text: string): string[] {
  if (text === NOTHING) return [];
  return text.split(', ').map((v) => (v === EMPTY_VERSION ? '' : v));
}

function changeOf(before: readonly string[], after: readonly string[]): PackageChange {
  if (before.length === 0) return after.length === 0 ? 'resized' : 'added';
  return after.length === 0 ? 'removed' : 'changed';
}

/**
 * `nix store diff-closures` stdout (Nix 2.8 on; colours or not) as the
 * packages it lists, in its order. Throws on a line it cannot read: a
 * format this does not know must not pass for "nothing changed".
 */
export function parseDiffClosures(stdout: string): PackageDiff[] {
  const packages: PackageDiff[] = [];
  for (const raw of stdout.replace(ANSI_SGR, '').split('\n')) {
    const line = raw.trimEnd();
    if (line === '') continue;
    // Store path names hold no ':' or space: the name ends at the first ': '.
    const match = /^([^\s:]+): (.+)$/.exec(line);
    if (!match) throw new Error(`cannot read this line of nix store diff-closures: ${JSON.stringify(raw)}`);
    const name = match[1]!;
    let rest = match[2]!;
    let sizeDeltaBytes: number | undefined;
    const comma = rest.lastIndexOf(', ');
    const sizeText = comma === -1 ? rest : rest.slice(comma + 2);
    const size = parseSize(sizeText);
    if (size !== undefined) {
      sizeDeltaBytes = size;
      rest = comma === -1 ? '' : rest.slice(0, comma);
    }
    let before: string[] = [];
    let after: string[] = [];
    if (rest !== '') {
      const arrow = rest.indexOf(ARROW);
      if (arrow === -1) throw new Error(`cannot read this line of nix store diff-closures: ${JSON.stringify(raw)}`);
      before = parseVersions(rest.slice(0, arrow));
      after = parseVersions(rest.slice(arrow + ARROW.length));
    } else if (size === undefined) {
      throw new Error(`cannot read this line of nix store diff-closures: ${JSON.stringify(raw)}`);
    }
    packages.push({ name, change: changeOf(before, after), before, after, ...(sizeDeltaBytes === undefined ? {} : { sizeDeltaBytes }) });
  }
  return packages;
}

/** Names the script's output: a reply without it did not come from {@link CLOSURE_DIFF}. */
const FORMAT = 'avalanche-closure-diff-1';
/** The line after which the rest of the output is `nix store diff-closures`' own. */
const DIFF_CLOSURES_MARKER = 'diff-closures:';

/**
 * POSIX sh for the host that compares: reads the closure sizes of the new
 * toplevel (and the current system), realising them first only when they
 * are not in the store — as a non-root user through the Nix daemon, which
 * substitutes them from the host's own substituters (the fleet's targets:
 * hawk's cache) — then prints, one `key=value` a line: `format=…`,
 * `current-system=<path or empty>`, `toplevel=<path>`,
 * `closure-bytes-after=<n>`, and unless this is a first deploy (empty
 * current system) `closure-bytes-before=<n>`, then a `diff-closures:` line
 * and `nix store diff-closures <current> <toplevel>`' output, as is.
 * Exits 3 when the new toplevel cannot be had (not in the store, and no
 * substituter has it), 4 when the current system cannot, each with a line on
 * stderr after Nix's own error; another status is Nix's.
 * `--no-gc-warning`: nothing roots the path (the deploy that follows
 * substitutes it again if a GC took it), and Nix need not warn about it.
 * Args: current-system (empty: first deploy) toplevel.
 */
export const CLOSURE_DIFF = `
current=$1 toplevel=$2
nixc() { ${nixCommandArgv().join(' ')} "$@"; }
have() {
  nix-store --realise --no-gc-warning "$1" >/dev/null && return 0
  echo "closure-diff: cannot get $2 $1 here: it is neither in this host's store nor served by its substituters" >&2
  return 1
}
# One line per path, "<path> <closure bytes>", in Nix's order (sorted), so each is found by its path. Both are
# usually here (after the copy, or the activation): asked first, not asking the substituters (path-info
# would query them for what is missing, and wait for them, before failing), and only when that fails
# realised, both at once (one Nix process, one daemon connection), one by one only to tell which is missing.
if ! sizes=$(nixc --option substitute false path-info -S "$toplevel" \${current:+"$current"} 2>/dev/null); then
  if ! nix-store --realise --no-gc-warning "$toplevel" \${current:+"$current"} >/dev/null 2>&1; then
    have "$toplevel" "the new toplevel" || exit 3
    if [ -n "$current" ]; then have "$current" "the current system" || exit 4; fi
  fi
  sizes=$(nixc path-info -S "$toplevel" \${current:+"$current"}) || exit 1
fi
echo "format=${FORMAT}"
echo "current-system=$current"
echo "toplevel=$toplevel"
after= before=
while read -r path bytes; do
  if [ "$path" = "$toplevel" ]; then after=$bytes; fi
  if [ "$path" = "$current" ]; then before=$bytes; fi
done <<EOF
$sizes
EOF
[ -n "$after" ] || exit 1
echo "closure-bytes-after=$after"
[ -n "$current" ] || exit 0
[ -n "$before" ] || exit 1
echo "closure-bytes-before=$before"
echo "${DIFF_CLOSURES_MARKER}"
nixc store diff-closures "$current" "$toplevel"
`;

/** The script's name in `ps` on the host ($0). */
const SCRIPT_NAME = 'avalanche-closure-diff';

/** The systems to compare: `current` is what the host runs ('' when it runs none: a first deploy). */
export interface ClosureDiffPaths {
  readonly current: string;
  readonly toplevel: string;
}

/** argv that runs {@link CLOSURE_DIFF} here (e.g. on hawk, when both closures are in its store). */
export function closureDiffLocalArgv(paths: ClosureDiffPaths): string[] {
  return ['sh', '-c', CLOSURE_DIFF, SCRIPT_NAME, paths.current, paths.toplevel];
}

/**
 * argv that runs {@link CLOSURE_DIFF} on `target` over ssh as its deploy
 * user (no root: realising a path asks the daemon, which substitutes from
 * the substituters nix.conf trusts). Values reach the script only as
 * positional arguments. Placeholders (`{{previous-system}}`,
 * `{{toplevel:<host>}}`) may stand for the paths in a plan.
 */
export function closureDiffArgv(target: RemoteHost, paths: ClosureDiffPaths): string[] {
  return remoteArgv(target, closureDiffLocalArgv(paths));
}

/**
 * {@link CLOSURE_DIFF}'s output as what the host's new system changes.
 * Throws when the output is not the script's (no format line, a size that is
 * not a number, a diff-closures line it cannot read).
 */
export function parseClosureDiffOutput(stdout: string): HostClosureDiff {
  const lines = stdout.split('\n');
  const marker = lines.indexOf(DIFF_CLOSURES_MARKER);
  const head = marker === -1 ? lines : lines.slice(0, marker);
  const fields = new Map<string, string>();
  for (const line of head) {
    const at = line.indexOf('=');
    if (at > 0) fields.set(line.slice(0, at), line.slice(at + 1).trim());
  }
  if (fields.get('format') !== FORMAT) throw new Error(`not a closure diff (expected a "format=${FORMAT}" line): ${JSON.stringify(stdout.slice(0, 200))}`);
  const bytes = (key: string): number => {
    const value = fields.get(key) ?? '';
    if (!/^\d+$/.test(value)) throw new Error(`closure diff: ${key} is ${JSON.stringify(value)}, not a number of bytes`);
    return Number(value);
  };
  const toplevel = fields.get('toplevel') ?? '';
  const current = fields.get('current-system') ?? '';
  const after = bytes('closure-bytes-after');
  if (current === '') return { kind: 'first-deploy', after: toplevel, closureBytes: { after } };
  const before = bytes('closure-bytes-before');
  if (marker === -1) throw new Error(`closure diff: no "${DIFF_CLOSURES_MARKER}" line after the sizes`);
  return {
    kind: 'diff',
    before: current,
    after: toplevel,
    packages: parseDiffClosures(lines.slice(marker + 1).join('\n')),
    closureBytes: { before, after },
    sizeDeltaBytes: after - before,
  };
}

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** Bytes as people read them, in binary units: `512 B`, `12.3 KiB`, `1.2 MiB`; with `signed`, `+` before a growth. */
export function formatBytes(bytes: number, options: { readonly signed?: boolean } = {}): string {
  const sign = bytes < 0 ? '-' : options.signed ? '+' : '';
  let value = Math.abs(bytes);
  if (value < 1024) return `${sign}${value} B`;
  let unit = -1;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${sign}${value.toFixed(1)} ${UNITS[unit]}`;
}

/** A package's versions as Nix writes them: `1.0, 1.1`; `∅` for none, `ε` for an empty version. */
export function formatVersions(versions: readonly string[]): string {
  return versions.length === 0 ? NOTHING : versions.map((v) => (v === '' ? EMPTY_VERSION : v)).join(', ');
}

/** `6.1.1 → 6.1.2`, `∅ → 0.1`; '' for a package whose versions did not change. */
export function formatVersionChange(pkg: Pick<PackageDiff, 'before' | 'after'>): string {
  return pkg.before.length === 0 && pkg.after.length === 0 ? '' : `${formatVersions(pkg.before)}${ARROW}${formatVersions(pkg.after)}`;
}

/** The kernel's name in nixpkgs (`linux-6.1.55`): the change a fleet of slow kernel builds wants named first. */
const KERNEL = 'linux';

/** The package a one-line summary names: the kernel when it changed, else the first changed one that is not the system itself. */
function headline(diff: ClosureDiff): PackageDiff | undefined {
  const changed = diff.packages.filter((p) => p.change === 'changed');
  return changed.find((p) => p.name === KERNEL) ?? changed.find((p) => !p.name.startsWith('nixos-system-')) ?? changed[0];
}

/**
 * One line for the live view's row and the text report:
 * `3 changed (linux 6.1.1 → 6.1.2), 1 added, 1 removed, +1.2 MiB`, with
 * `1 resized` for size-only changes; `no package changes, +0 B` when Nix
 * listed nothing; `first deploy, 139.5 KiB` for a host that ran no system.
 */
export function summarizeClosureDiff(diff: HostClosureDiff): string {
  if (diff.kind === 'first-deploy') return `first deploy, ${formatBytes(diff.closureBytes.after)}`;
  const count = (change: PackageChange) => diff.packages.filter((p) => p.change === change).length;
  const parts: string[] = [];
  const changed = count('changed');
  if (changed > 0) {
    const named = headline(diff);
    parts.push(`${changed} changed${named ? ` (${named.name} ${formatVersionChange(named)})` : ''}`);
  }
  for (const change of ['added', 'removed', 'resized'] as const) {
    const n = count(change);
    if (n > 0) parts.push(`${n} ${change}`);
  }
  if (parts.length === 0) parts.push('no package changes');
  parts.push(formatBytes(diff.sizeDeltaBytes, { signed: true }));
  return parts.join(', ');
}
