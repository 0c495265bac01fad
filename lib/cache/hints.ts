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
