/** The fleet document's troubleshooting, keyed by what we observed. */
export const cacheHints = {
  keyMismatch: (cacheUrl: string) =>
    `Key mismatch: the inventory's cache.publicKey must match the cache's signing key (trusted-public-keys on every machine); compare with ${cacheUrl}'s cache-pub-key.pem`,
  harmoniaDown: (cacheUrl: string) => `Harmonia down: curl ${cacheUrl}/nix-cache-info should answer "StoreDir: /nix/store"`,
  pathNotSigned: () =>
    'Path not signed: Harmonia only serves paths signed with its key, and the path must exist in the cache host\'s store (was the build copied back to it?)',
  firewall: (cacheUrl: string) => `Firewall: ensure the cache port is open on the cache host (${new URL(cacheUrl).host})`,
} as const;

export function cacheUnreachableHints(cacheUrl: string): string[] {
  return [cacheHints.harmoniaDown(cacheUrl), cacheHints.firewall(cacheUrl)];
}

export function pathMissingHints(cacheUrl: string): string[] {
  return [cacheHints.pathNotSigned(), cacheHints.harmoniaDown(cacheUrl), cacheHints.keyMismatch(cacheUrl), cacheHints.firewall(cacheUrl)];
}

/** "GC collecting cached paths": the roots on the cache host that keep what it serves. */
export const gcRootHints = {
  missingRoot: (dir: string) =>
    `Missing GC root: check ${dir}/ for the expected symlink (the post-build hook pin-arm-cache.sh and every deploy create them)`,
  dangling: () => 'Dangling symlink: the target store path was manually deleted; re-build and re-pin',
  unreachable: (destinationText: string) => `The cache host must answer SSH: ssh ${destinationText} -- true must work by hand`,
} as const;
