/**
 * How many hosts a command handles at once unless `--concurrency` says
 * otherwise: 10, colmena's default. The coordinator is what bounds it: each
 * host in flight holds an ssh connection and a few processes, and — when the
 * configured nixos-rebuild evaluates the host again (`--flake` without
 * `--store-path`) — one evaluation of a NixOS configuration, hundreds of MB
 * to GBs of memory each (README "Concurrency and memory"). A fleet larger
 * than this deploys in slots; it never evaluates every host at once.
 */
export const DEFAULT_CONCURRENCY = 10;

/** `--concurrency` if given, else {@link DEFAULT_CONCURRENCY}; never more than `hosts` nor less than 1. */
export function concurrencyFor(hosts: number, given?: number): number {
  return Math.max(1, Math.min(given ?? DEFAULT_CONCURRENCY, Math.max(1, hosts)));
}
