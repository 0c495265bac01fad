/**
 * Issue 12 #13: an address is parsed once (lib/inventory/schema.ts) and each
 * syntax that names a machine is built by its own function: ssh's
 * destination, a Nix ssh:// store URI, nixos-rebuild's --target-host, and the
 * cache's HTTP URLs (the URL class, never string joins).
 */
import { describe, expect, it } from 'vitest';
import { cacheInfoUrl, narInfoUrl, narInfoUrlForHash } from '../../lib/cache/client.ts';
import { parseHostAddress } from '../../lib/inventory/schema.ts';
import { planDeploy } from '../../lib/plan/assemble.ts';
import { PLACEHOLDER } from '../../lib/plan/placeholders.ts';
import { builderHost, coordinatorHost, targetHost } from '../../lib/remote/fleet.ts';
import { nixSshStoreUri, type RemoteHost, sshDestination, targetHostArg } from '../../lib/remote/host.ts';
import { FIXTURE_TOPLEVEL, fleetInventory } from '../helpers/fixtures.ts';

describe('an address is parsed once', () => {
  it('tells a DNS name, an IPv4 and an IPv6 address apart, the IPv6 one with or without brackets', () => {
    expect(parseHostAddress('opi01.internal')).toEqual({ kind: 'name', host: 'opi01.internal' });
    expect(parseHostAddress('hawk')).toEqual({ kind: 'name', host: 'hawk' });
    expect(parseHostAddress('10.213.77.11')).toEqual({ kind: 'ipv4', host: '10.213.77.11' });
    expect(parseHostAddress('fd00::13')).toEqual({ kind: 'ipv6', host: 'fd00::13' });
    expect(parseHostAddress('[fd00::13]')).toEqual({ kind: 'ipv6', host: 'fd00::13' });
    expect(parseHostAddress('[::ffff:10.0.0.1]')).toEqual({ kind: 'ipv6', host: '::ffff:10.0.0.1' });
  });

  it('refuses what is none of them, saying why', () => {
    expect(parseHostAddress('[cafe]')).toEqual({ problem: 'brackets are for an IPv6 address only; "cafe" is not one' });
    expect(parseHostAddress('[opi01.internal]')).toMatchObject({ problem: expect.stringContaining('brackets are for an IPv6 address only') });
    expect(parseHostAddress('fd00::13]')).toMatchObject({ problem: expect.stringContaining('is neither') });
    expect(parseHostAddress('10.0.0.256')).toMatchObject({ problem: expect.stringContaining('is neither') });
    expect(parseHostAddress('opi01..internal')).toMatchObject({ problem: expect.stringContaining('is neither') });
    expect(parseHostAddress('-opi01')).toMatchObject({ problem: expect.stringContaining('is neither') });
    expect(parseHostAddress('fe80::1%eth0')).toMatchObject({ problem: expect.stringContaining('IPv6 zone') });
  });

  it('takes an IPv6 coordinator: ssh gets it without brackets, Nix\'s ssh:// store URI with them', () => {
    for (const written of ['[fd00::1]', 'fd00::1']) {
      const inventory = fleetInventory((json) => (json.coordinator.address = written));
      const plan = planDeploy(inventory, ['opi01', 'opi02'], { goal: 'switch', onCoordinator: false, localUser: 'avl' });
      // Before: "fd00::1" became ssh://root@fd00::1 (Nix 2.31 cannot parse it), "[fd00::1]" reached ssh as a host name.
      expect(plan.copyToCoordinator?.argv.slice(0, 4), written).toEqual(['nix', 'copy', '--to', 'ssh://root@[fd00::1]']);
      const pin = plan.pin.commands[0]!.argv;
      expect(pin[0]).toBe('ssh');
      expect(pin, written).toContain('root@fd00::1');
      expect(plan.lock!.acquire.argv).toContain('root@fd00::1');
      expect(inventory.coordinator.address).toEqual({ kind: 'ipv6', host: 'fd00::1' });
    }
  });
});

describe('each syntax by its own function', () => {
  const at = (address: RemoteHost['address']): RemoteHost => ({ user: 'nix-builder', address, escalation: 'none', sshOptions: [] });

  it('ssh destination, store URI and --target-host for a name and an IPv4 address', () => {
    for (const address of [{ kind: 'name', host: 'opi03.internal' }, { kind: 'ipv4', host: '10.213.77.13' }] as const) {
      expect(sshDestination(at(address))).toBe(`nix-builder@${address.host}`);
      expect(nixSshStoreUri(at(address))).toBe(`ssh://nix-builder@${address.host}`);
      expect(targetHostArg(at(address))).toBe(`nix-builder@${address.host}`);
    }
  });

  it('an IPv6 address: bare for ssh, bracketed in the store URI, never a --target-host', () => {
    const v6 = at({ kind: 'ipv6', host: 'fd00::13' });
    expect(sshDestination(v6)).toBe('nix-builder@fd00::13');
    expect(nixSshStoreUri(v6)).toBe('ssh://nix-builder@[fd00::13]');
    expect(() => targetHostArg(v6)).toThrow(/--target-host cannot name the IPv6 address fd00::13/);
  });

  it('the fleet\'s values carry the parsed address into the builders spec and nixos-rebuild', () => {
    const inventory = fleetInventory((json) => (json.hosts.opi03.address = '10.213.77.13'));
    expect(builderHost(inventory, 'opi03')!.address).toEqual({ kind: 'ipv4', host: '10.213.77.13' });
    expect(targetHost(inventory, 'opi03').address).toEqual({ kind: 'ipv4', host: '10.213.77.13' });
    expect(coordinatorHost(inventory).address).toEqual({ kind: 'name', host: 'hawk.internal' });
    const plan = planDeploy(inventory, ['opi03'], { goal: 'switch', onCoordinator: true, localUser: 'avl' });
    expect(plan.builds[0]!.builders[0]!.spec).toMatch(/^ssh:\/\/nix-builder@10\.213\.77\.13 aarch64-linux /);
    const rebuild = plan.deploy.hosts.opi03!.rebuild.argv;
    expect(rebuild[rebuild.indexOf('--target-host') + 1]).toBe('deploy@10.213.77.13');
  });
});

describe('the cache\'s URLs', () => {
  const hash = 'c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn';

  it('resolve beneath the base with the URL class: a trailing slash, a sub-path, an IPv6 host', () => {
    // Before: string joins made http://hawk.internal:5000//nix-cache-info.
    expect(cacheInfoUrl('http://hawk.internal:5000/')).toBe('http://hawk.internal:5000/nix-cache-info');
    expect(cacheInfoUrl('http://hawk.internal:5000')).toBe('http://hawk.internal:5000/nix-cache-info');
    expect(cacheInfoUrl('https://hawk.internal/harmonia')).toBe('https://hawk.internal/harmonia/nix-cache-info');
    expect(cacheInfoUrl('http://[fd00::1]:5000')).toBe('http://[fd00::1]:5000/nix-cache-info');
    expect(narInfoUrl('http://hawk.internal:5000/', FIXTURE_TOPLEVEL)).toBe(`http://hawk.internal:5000/${hash}.narinfo`);
    expect(narInfoUrl('http://[fd00::1]:5000/harmonia', FIXTURE_TOPLEVEL)).toBe(`http://[fd00::1]:5000/harmonia/${hash}.narinfo`);
    // The appended segment is exactly what the URL class resolves for a real hash.
    for (const base of ['http://hawk.internal:5000', 'http://[fd00::1]:5000/a/b/']) {
      expect(narInfoUrlForHash(base, hash)).toBe(new URL(`${hash}.narinfo`, cacheInfoUrl(base)).href);
    }
  });

  it('keep the plan\'s placeholder as it is (the URL class would percent-encode its braces), and refuse any other segment', () => {
    const url = narInfoUrlForHash('http://hawk.internal:5000', PLACEHOLDER.toplevelHash('opi01'));
    expect(url).toBe('http://hawk.internal:5000/{{toplevel-hash:opi01}}.narinfo');
    expect(new URL(url.replace(PLACEHOLDER.toplevelHash('opi01'), hash)).href).toBe(`http://hawk.internal:5000/${hash}.narinfo`);
    for (const bad of ['../x', 'a/b', `${hash}?x`, `${hash}#`, '{{toplevel-hash:opi01}}/x', '']) {
      expect(() => narInfoUrlForHash('http://hawk.internal:5000', bad), bad).toThrow(/not a store path hash/);
    }
  });

  it('cache.url is parsed once, by the URL class (refusals: test/unit/inventory.test.ts)', () => {
    expect(fleetInventory((json) => (json.cache.url = 'HTTP://Hawk.Internal:5000/')).cache.url).toBe('http://hawk.internal:5000');
    expect(fleetInventory((json) => (json.cache.url = 'http://[fd00::1]:5000')).cache.url).toBe('http://[fd00::1]:5000');
  });
});
