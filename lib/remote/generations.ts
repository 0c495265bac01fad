/**
 * A host's NixOS system generations, read over SSH as its deploy user (the
 * profile directory and /run are world-readable: no root needed). The script
 * is a constant and every value reaches it as a positional argument, as in
 * lib/remote/scripts.ts.
 *
 * What it relies on (Nix's profile layout, unchanged since nix-env): the
 * profile `/nix/var/nix/profiles/system` is a symlink to `system-<N>-link`
 * in the same directory, the generation the bootloader starts by default;
 * each `system-<N>-link` is a symlink to that generation's toplevel. Like
 * `nix-env --list-generations`, a generation's date is the link's own mtime
 * (lstat). `/run/current-system` is what runs now, `/run/booted-system`
 * what the machine booted (both set by NixOS's activation and stage 2).
 */
import { z } from 'zod';
import { type RemoteHost, remoteArgv } from './host.ts';

/** Where NixOS links the system it booted (stage 2); absent on a host that never booted NixOS. */
export const BOOTED_SYSTEM = '/run/booted-system';

/** Names the output's format: a reply without it did not come from this script. */
const FORMAT = 'avalanche-generations-1';

/**
 * Prints `format=…`, `profile-name=<the profile's basename, e.g. system>`,
 * `profile-link=<the profile's link target, e.g. system-5-link>`,
 * `current-system=<store path>`, `booted-system=<store path>` (empty when
 * the path does not exist: `readlink -f` alone would print a missing last
 * component as is), then one `generation=<N> <mtime, epoch s> <store path>`
 * per `<profile>-<N>-link` (other names in the directory skipped). `stat -c %Y` without -L reads the link itself (GNU
 * coreutils and busybox); an empty mtime when stat cannot tell.
 * Args: profile current-system booted-system.
 */
export const LIST_GENERATIONS = `
profile=$1
dir=$(dirname "$profile") base=$(basename "$profile")
resolved() { [ -e "$1" ] && readlink -f "$1" 2>/dev/null; }
echo "format=${FORMAT}"
echo "profile-name=$base"
echo "profile-link=$([ -L "$profile" ] && readlink "$profile" 2>/dev/null)"
echo "current-system=$(resolved "$2")"
echo "booted-system=$(resolved "$3")"
for link in "$dir/$base"-*-link; do
  [ -L "$link" ] || continue
  n=\${link#"$dir/$base"-}; n=\${n%-link}
  [ -n "$n" ] || continue
  case $n in *[!0-9]*) continue ;; esac
  echo "generation=$n $(stat -c %Y "$link" 2>/dev/null) $(readlink -f "$link" 2>/dev/null)"
done
`;

/**
 * argv that lists `target`'s system generations (LIST_GENERATIONS over ssh,
 * as its deploy user, no root). `paths` as in the inventory's `paths`.
 */
export function generationsArgv(target: RemoteHost, paths: { readonly profile: string; readonly currentSystem: string }): string[] {
  return remoteArgv(target, ['sh', '-c', LIST_GENERATIONS, 'avalanche-generations', paths.profile, paths.currentSystem, BOOTED_SYSTEM]);
}

export const systemGenerationSchema = z.object({
  /** N of `system-N-link` */
  number: z.number().int().nonnegative(),
  /** when the generation was made (its link's mtime, as nix-env --list-generations shows), ISO 8601 UTC; absent when stat could not tell */
  createdAt: z.string().optional(),
  /** the store path the generation's link resolves to */
  toplevel: z.string(),
  /** the profile points at it: the generation the bootloader starts by default */
  bootDefault: z.boolean(),
  /** its toplevel is what runs now (/run/current-system) */
  current: z.boolean(),
  /** its toplevel is what the host booted (/run/booted-system) */
  booted: z.boolean(),
});
export type SystemGeneration = z.infer<typeof systemGenerationSchema>;

export const hostGenerationsSchema = z.object({
  /** ascending by number; empty on a host never deployed (no profile) */
  generations: z.array(systemGenerationSchema),
  /** the generation the profile points at (the boot default); absent without a profile, or when it points elsewhere than a system-N-link */
  profileGeneration: z.number().int().nonnegative().optional(),
  /** the store path /run/current-system resolves to; absent when it does not exist */
  currentSystem: z.string().optional(),
  /** the store path /run/booted-system resolves to; absent when it does not exist (not booted as NixOS) */
  bootedSystem: z.string().optional(),
});
export type HostGenerations = z.infer<typeof hostGenerationsSchema>;

/** `system-5-link` (or a path ending so) → 5; undefined for a link not named `<profileBase>-<N>-link`. */
export function linkNumber(link: string, profileBase?: string | undefined): number | undefined {
  const name = link.slice(link.lastIndexOf('/') + 1);
  const match = /^(.+)-(\d+)-link$/.exec(name);
  if (!match || (profileBase !== undefined && match[1] !== profileBase)) return undefined;
  return Number(match[2]);
}

/**
 * LIST_GENERATIONS's output as {@link HostGenerations}. Throws when the
 * output is not that script's (no format line, or a generation line it
 * cannot read): a host whose reply cannot be read is not a host with no
 * generations.
 */
export function parseGenerations(stdout: string): HostGenerations {
  const fields = new Map<string, string>();
  const raw: { number: number; mtime: string; toplevel: string }[] = [];
  for (const line of stdout.split('\n')) {
    const at = line.indexOf('=');
    if (at <= 0) continue;
    const key = line.slice(0, at);
    const value = line.slice(at + 1).trim();
    if (key !== 'generation') {
      fields.set(key, value);
      continue;
    }
    // `<N> <mtime> <path>`: the mtime may be empty (two spaces), store paths hold no spaces.
    const match = /^(\d+) (\d*) (.*)$/.exec(line.slice(at + 1).trimEnd());
    if (!match) throw new Error(`cannot read the generation line "${line}"`);
    raw.push({ number: Number(match[1]), mtime: match[2]!, toplevel: match[3]! });
  }
  if (fields.get('format') !== FORMAT) throw new Error(`not a generation listing (expected a "format=${FORMAT}" line): ${JSON.stringify(stdout.slice(0, 200))}`);

  const profileLink = fields.get('profile-link') || undefined;
  const profileGeneration = profileLink === undefined ? undefined : linkNumber(profileLink, fields.get('profile-name') || undefined);
  const currentSystem = fields.get('current-system') || undefined;
  const bootedSystem = fields.get('booted-system') || undefined;
  const generations = raw
    .sort((a, b) => a.number - b.number)
    .map((g): SystemGeneration => ({
      number: g.number,
      ...(g.mtime === '' ? {} : { createdAt: new Date(Number(g.mtime) * 1000).toISOString() }),
      toplevel: g.toplevel,
      bootDefault: g.number === profileGeneration,
      current: currentSystem !== undefined && g.toplevel === currentSystem,
      booted: bootedSystem !== undefined && g.toplevel === bootedSystem,
    }));
  return {
    generations,
    ...(profileGeneration === undefined ? {} : { profileGeneration }),
    ...(currentSystem === undefined ? {} : { currentSystem }),
    ...(bootedSystem === undefined ? {} : { bootedSystem }),
  };
}

/** The generation numbered `number`, if the host has it. */
export function generationByNumber(host: HostGenerations, number: number): SystemGeneration | undefined {
  return host.generations.find((g) => g.number === number);
}

/**
 * What `nixos-rebuild --rollback` goes back to: the highest-numbered
 * generation below the one the profile points at (Nix's
 * `nix-env --rollback` rule); undefined without a profile or below its first.
 */
export function previousGeneration(host: HostGenerations): SystemGeneration | undefined {
  const current = host.profileGeneration;
  if (current === undefined) return undefined;
  return host.generations.filter((g) => g.number < current).at(-1);
}
