/**
 * GC roots on the cache host, as the fleet document keeps them: one symlink
 * per pinned store path in `cache.gcRootDir`, named after the path's base
 * name, pruned weekly when older than 30 days. The deploy pins as the
 * document's script does; the doctor lists them. The same argv runs locally
 * on the coordinator or over SSH to it.
 */
import { posix } from 'node:path';
import { storePathHash } from './narinfo.ts';

/** The weekly prune timer's threshold (`find … -type l -mtime +30 -delete`). */
export const PRUNE_AFTER_DAYS = 30;


export function rootPath(gcRootDir: string, storePath: string): string {
  return posix.join(gcRootDir, posix.basename(storePath));
}

/** How many roots one `ln` links at most: the argv stays far below ARG_MAX (and sshd's line) for any fleet. */
const ROOTS_PER_LINK = 100;

/**
 * The document's pin script (pin-arm-cache.sh: `mkdir -p`, then a link per
 * path named after its base name: {@link rootPath}) for the given store
 * paths, as `mkdir -p <dir>` and one `ln -sf -t <dir> <path>…`
 * for up to {@link ROOTS_PER_LINK} of them: one process, or one SSH round
 * trip, instead of one per host (30 hosts: 30 sequential `ln`s, 5–8 ms each,
 * ~0.2 s on the run's critical path in the lab). GNU ln names each link `<dir>/<base name>`
 * and, with -f, replaces an existing one (a new mtime for the prune timer)
 * without following it into the read-only store directory it points at, as
 * the script's `-n` does; without -n, `<dir>` may be a symlink to a
 * directory, as the script allows. Idempotent.
 */
export function pinRootsArgvs(gcRootDir: string, roots: readonly { readonly storePath: string }[]): string[][] {
  const links: string[][] = [];
  for (let i = 0; i < roots.length; i += ROOTS_PER_LINK) {
    links.push(['ln', '-sf', '-t', gcRootDir, ...roots.slice(i, i + ROOTS_PER_LINK).map((r) => r.storePath)]);
  }
  return [['mkdir', '-p', gcRootDir], ...links];
}

/** Exits 0 when the deploying user can pin in `gcRootDir` (made if missing), else says why on stderr. */
export function writableDirArgv(gcRootDir: string): string[] {
  return ['sh', '-c', 'mkdir -p -- "$1" && test -w "$1" && test -x "$1" || { echo "cannot create links in $1 as $(id -un)" >&2; exit 1; }', 'avalanche-pin-check', gcRootDir];
}

/**
 * One line per entry: depth, type, type of what a link points to (N: nothing),
 * mtime of the link itself (what the prune timer looks at), name, link target.
 * Depth 0 is the directory itself: no such line means it does not exist.
 */
export function listRootsArgv(gcRootDir: string): string[] {
  return ['find', gcRootDir, '-maxdepth', '1', '-printf', '%d\\t%y\\t%Y\\t%T@\\t%f\\t%l\\n'];
}

export interface GcRoot {
  readonly name: string;
  readonly target: string;
  /** the link points at nothing: the store path was deleted */
  readonly dangling: boolean;
  readonly mtimeMs: number;
}

export type GcRootListing = { readonly exists: false } | { readonly exists: true; readonly roots: readonly GcRoot[] };

export function parseRootListing(stdout: string): GcRootListing {
  let exists = false;
  const roots: GcRoot[] = [];
  for (const line of stdout.split('\n')) {
    const fields = line.split('\t');
    if (fields.length < 6) continue;
    const [depth, type, targetType, mtime, name] = fields as [string, string, string, string, string];
    const target = fields.slice(5).join('\t');
    if (depth === '0') exists = type === 'd';
    else if (depth === '1' && type === 'l') {
      roots.push({ name, target, dangling: targetType === 'N' || targetType === 'L', mtimeMs: Math.round(Number(mtime) * 1000) });
    }
  }
  return exists ? { exists, roots } : { exists };
}

export function olderThan(roots: readonly GcRoot[], days: number, now: number): GcRoot[] {
  return roots.filter((root) => now - root.mtimeMs > days * 86_400_000);
}

/** How many of the newest roots are worth asking the cache about (the doctor's key check and preflight's). */
export const ROOTS_TO_TRY = 3;

/**
 * The newest `count` roots that point at a store path that still exists
 * (mtime of the link, newest first): what the cache host's Harmonia must
 * serve. Empty when the directory does not exist.
 */
export function newestLiveRoots(listing: GcRootListing | undefined, count = ROOTS_TO_TRY): GcRoot[] {
  if (!listing?.exists) return [];
  return listing.roots
    .filter((root) => !root.dangling && isStorePath(root.target))
    .sort((a, b) => b.mtimeMs - a.mtimeMs)
    .slice(0, count);
}

/** A path a narinfo can be asked for: under /nix/store, with a valid hash part. */
export function isStorePath(path: string): boolean {
  try {
    storePathHash(path);
    return path.startsWith('/nix/store/');
  } catch {
    return false;
  }
}
