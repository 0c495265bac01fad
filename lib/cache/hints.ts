import type { SignatureCheck } from './narinfo.ts';

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

/** What a failed signature check means, and the document's hint for it (the cache wait, preflight and doctor). */
export function signatureProblem(check: Exclude<SignatureCheck, { ok: true }>, cacheUrl: string): { message: string; hint: string } {
  if (check.reason === 'unsigned') return { message: 'path not signed', hint: cacheHints.pathNotSigned() };
  const signers = check.keyNames.join(', ');
  return {
    message: check.reason === 'bad-signature' ? `key mismatch: the signature by ${signers} does not verify` : `key mismatch: signed by ${signers}`,
    hint: cacheHints.keyMismatch(cacheUrl),
  };
}

/** The shipped hosts.json's cache.publicKey: 32 zero bytes, to be replaced with the cache's real key. */
export function isPlaceholderKey(publicKey: string): boolean {
  const bytes = Buffer.from(publicKey.slice(publicKey.indexOf(':') + 1), 'base64');
  return bytes.length === 32 && bytes.every((b) => b === 0);
}
