import { describe, expect, it } from 'vitest';
import { checkSignature, fingerprint, NarInfoFormatError, parseNarInfo, parsePublicKey, storePathHash } from '../../lib/cache/narinfo.ts';
import { FIXTURE_KEY, FIXTURE_TOPLEVEL, fixture, OTHER_KEY } from '../helpers/fixtures.ts';

const trusted = [parsePublicKey(FIXTURE_KEY)];

describe('narinfo (fixtures made by real Nix)', () => {
  it('parses the fields', () => {
    const info = parseNarInfo(fixture('narinfo/signed.narinfo'));
    expect(info).toMatchObject({
      storePath: FIXTURE_TOPLEVEL,
      narHash: 'sha256:1x7zdd0gjj86wsa63fpcs4sr3cjzb8b4zzsvrl74cvaif2v81ai7',
      narSize: 168,
      references: ['7kh07n14rb43dvi221pvih4c9h4iryg3-fixture-dep'],
    });
    expect(info.sigs).toHaveLength(1);
  });

  it('builds the fingerprint Nix signs', () => {
    expect(fingerprint(parseNarInfo(fixture('narinfo/signed.narinfo')))).toBe(
      `1;${FIXTURE_TOPLEVEL};sha256:1x7zdd0gjj86wsa63fpcs4sr3cjzb8b4zzsvrl74cvaif2v81ai7;168;/nix/store/7kh07n14rb43dvi221pvih4c9h4iryg3-fixture-dep`,
    );
  });

  it('verifies a signature by the trusted key, with and without references', () => {
    expect(checkSignature(parseNarInfo(fixture('narinfo/signed.narinfo')), trusted)).toEqual({ ok: true, keyName: 'fixture-cache-1' });
    expect(checkSignature(parseNarInfo(fixture('narinfo/no-references.narinfo')), trusted)).toEqual({ ok: true, keyName: 'fixture-cache-1' });
  });

  it('tells an unsigned path, another key and a tampered narinfo apart', () => {
    expect(checkSignature(parseNarInfo(fixture('narinfo/unsigned.narinfo')), trusted)).toMatchObject({ ok: false, reason: 'unsigned' });
    expect(checkSignature(parseNarInfo(fixture('narinfo/signed-by-other-key.narinfo')), trusted)).toEqual({
      ok: false, reason: 'other-key', keyNames: ['other-cache-1'],
    });
    expect(checkSignature(parseNarInfo(fixture('narinfo/tampered.narinfo')), trusted)).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(checkSignature(parseNarInfo(fixture('narinfo/signed-by-other-key.narinfo')), [parsePublicKey(OTHER_KEY)])).toMatchObject({ ok: true });
  });

  it('rejects what is not a narinfo, a key or a store path', () => {
    expect(() => parseNarInfo('StorePath: /nix/store/x\n')).toThrow(NarInfoFormatError);
    expect(() => parsePublicKey('hawk.internal:XXXXXXXX')).toThrow(/not a Nix public key/);
    expect(storePathHash(FIXTURE_TOPLEVEL)).toBe('c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn');
    expect(() => storePathHash('/nix/store/not-a-hash')).toThrow(/not a store path/);
  });
});
