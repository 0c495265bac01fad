/**
 * The one place that knows the narinfo format and how Nix signs it:
 * `Sig: <key name>:<base64 ed25519 signature>` over
 * `1;<StorePath>;<NarHash>;<NarSize>;<comma-joined sorted full reference paths>`.
 */
import { createPublicKey, verify } from 'node:crypto';
import { posix } from 'node:path';

export interface NarInfo {
  readonly storePath: string;
  readonly url: string;
  readonly narHash: string;
  readonly narSize: number;
  /** base names, as in the file */
  readonly references: readonly string[];
  readonly deriver?: string | undefined;
  readonly sigs: readonly string[];
}

export class NarInfoFormatError extends Error {
  override name = 'NarInfoFormatError';
}

/** `Key: value` lines, as in narinfo and nix-cache-info; repeated keys keep every value. */
export function parseKeyValueLines(text: string): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    fields.set(key, [...(fields.get(key) ?? []), value]);
  }
  return fields;
}

export function parseNarInfo(text: string): NarInfo {
  const fields = parseKeyValueLines(text);
  const one = (key: string): string => {
    const value = fields.get(key)?.[0];
    if (value === undefined) throw new NarInfoFormatError(`narinfo has no ${key} field`);
    return value;
  };
  const narSize = Number(one('NarSize'));
  if (!Number.isSafeInteger(narSize) || narSize < 0) throw new NarInfoFormatError(`narinfo NarSize is not a size: ${one('NarSize')}`);
  const refs = fields.get('References')?.[0] ?? '';
  return {
    storePath: one('StorePath'),
    url: one('URL'),
    narHash: one('NarHash'),
    narSize,
    references: refs.split(' ').filter(Boolean),
    deriver: fields.get('Deriver')?.[0],
    sigs: fields.get('Sig') ?? [],
  };
}

export function fingerprint(info: NarInfo): string {
  const storeDir = posix.dirname(info.storePath);
  const refs = info.references.map((ref) => `${storeDir}/${ref}`).sort();
  return `1;${info.storePath};${info.narHash};${info.narSize};${refs.join(',')}`;
}

export interface PublicKey {
  readonly name: string;
  readonly key: Buffer;
}

/** `name:base64` as in trusted-public-keys. */
export function parsePublicKey(text: string): PublicKey {
  const colon = text.indexOf(':');
  const key = Buffer.from(text.slice(colon + 1), 'base64');
  if (colon <= 0 || key.length !== 32) throw new NarInfoFormatError(`not a Nix public key: ${text}`);
  return { name: text.slice(0, colon), key };
}

// DER SubjectPublicKeyInfo header for a raw 32-byte ed25519 key.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export type SignatureCheck =
  | { readonly ok: true; readonly keyName: string }
  | { readonly ok: false; readonly reason: 'unsigned' | 'other-key' | 'bad-signature'; readonly keyNames: readonly string[] };

export function checkSignature(info: NarInfo, trusted: readonly PublicKey[]): SignatureCheck {
  const keyNames = info.sigs.map((sig) => sig.slice(0, Math.max(0, sig.indexOf(':'))));
  if (info.sigs.length === 0) return { ok: false, reason: 'unsigned', keyNames };
  const message = Buffer.from(fingerprint(info));
  let sawTrustedName = false;
  for (const sig of info.sigs) {
    const colon = sig.indexOf(':');
    const key = trusted.find((k) => k.name === sig.slice(0, colon));
    if (!key) continue;
    sawTrustedName = true;
    const spki = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, key.key]), format: 'der', type: 'spki' });
    if (verify(null, message, spki, Buffer.from(sig.slice(colon + 1), 'base64'))) return { ok: true, keyName: key.name };
  }
  return { ok: false, reason: sawTrustedName ? 'bad-signature' : 'other-key', keyNames };
}

/** The narinfo's name on a cache: the hash part of the store path's base name. */
export function storePathHash(storePath: string): string {
  const hash = posix.basename(storePath).slice(0, 32);
  if (!/^[0-9a-df-np-sv-z]{32}$/.test(hash)) throw new NarInfoFormatError(`not a store path: ${storePath}`);
  return hash;
}
