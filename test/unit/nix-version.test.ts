import { describe, expect, it } from 'vitest';
import { planFleet } from '../helpers/pipeline.ts';
import { derivationOutputInstallable, parseNixVersion } from '../../lib/nix/version.ts';

describe("this machine's Nix and how it names a derivation's output", () => {
  it('reads the versions Nix and Lix print', () => {
    expect(parseNixVersion('nix (Nix) 2.8.0\n')).toEqual({ text: 'nix (Nix) 2.8.0', major: 2, minor: 8 });
    expect(parseNixVersion('nix (Nix) 2.26.3')).toMatchObject({ major: 2, minor: 26 });
    expect(parseNixVersion('nix (Lix, like Nix) 2.91.1\nSystem type: x86_64-linux')).toMatchObject({ major: 2, minor: 91 });
    expect(parseNixVersion('command not found')).toBeUndefined();
  });

  it('spells <drv>^out from Nix 2.13 on (and when unknown), the bare .drv before', () => {
    const drv = '/nix/store/1vywq121qhh8y6hakaxa5n96fvvznv3k-nixos-system-opi01.drv';
    expect(derivationOutputInstallable(drv, 'out', parseNixVersion('nix (Nix) 2.8.0'))).toBe(drv);
    // 2.9 to 2.12 know ^ for flake installables only (NixOS 22.11 ships 2.11).
    expect(derivationOutputInstallable(drv, 'out', parseNixVersion('nix (Nix) 2.11.1'))).toBe(drv);
    expect(derivationOutputInstallable(drv, 'out', parseNixVersion('nix (Nix) 2.12.0'))).toBe(drv);
    expect(derivationOutputInstallable(drv, 'out', parseNixVersion('nix (Nix) 2.13.0'))).toBe(`${drv}^out`);
    expect(derivationOutputInstallable(drv, 'out', parseNixVersion('nix (Nix) 2.26.3'))).toBe(`${drv}^out`);
    expect(derivationOutputInstallable(drv, 'out', parseNixVersion('nix (Nix) 3.0.0'))).toBe(`${drv}^out`);
    expect(derivationOutputInstallable(drv, 'out', undefined)).toBe(`${drv}^out`);
  });

  it("has the seed build build the evaluated derivations, spelt for this machine's Nix", () => {
    const old = planFleet({ localNix: parseNixVersion('nix (Nix) 2.8.0') });
    expect(old.builds[0]!.headStart!.build.argv.at(-1)).toBe('{{toplevel-drv:opi01}}');
    expect(old.builds[0]!.build.argv.slice(-2)).toEqual(['{{toplevel-drv:opi02}}', '{{toplevel-drv:opi03}}']);
    expect(old.builds[0]!.build.argv.join(' ')).not.toContain('#');
  });
});
