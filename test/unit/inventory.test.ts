import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InventoryError, UsageError } from '../../lib/errors.ts';
import { loadInventory, parseInventory } from '../../lib/inventory/load.ts';
import { resolveSelection, systemBuilders } from '../../lib/inventory/select.ts';
import { fleetInventory, fleetInventoryText, wholeFleetInventory } from '../helpers/fixtures.ts';

function problems(edit: (json: any) => void): string[] {
  const json = JSON.parse(fleetInventoryText());
  edit(json);
  try {
    parseInventory(JSON.stringify(json));
  } catch (error) {
    expect(error).toBeInstanceOf(InventoryError);
    return [...(error as InventoryError).issues];
  }
  throw new Error('inventory was accepted');
}

describe('inventory', () => {
  it('accepts the fleet of the document', () => {
    const inventory = fleetInventory();
    expect(Object.keys(inventory.hosts)).toEqual(['opi01', 'opi02', 'opi03']);
    expect(inventory.seed).toBe('opi03');
    expect(inventory.hosts.opi01!.builder).toMatchObject({ user: 'nix-builder', maxJobs: 6, speedFactor: 2, supportedFeatures: ['big-parallel'] });
    expect(inventory.baselineMinutes).toBe(120);
  });

  it('names the JSON path of each problem', () => {
    const found = problems((json) => {
      json.hosts.opi02.address = 'opi02.internal; rm -rf /';
      json.hosts.opi01.builder.maxJobs = 0;
      json.cache.publicKey = 'hawk.internal:XXXXXXXX';
      delete json.coordinator.system;
      json.hosts.opi03.colour = 'red';
    });
    expect(found).toEqual(
      expect.arrayContaining([
        'hosts.opi02.address: must be a DNS name or an IP address',
        expect.stringMatching(/^hosts\.opi01\.builder\.maxJobs: /),
        expect.stringMatching(/^cache\.publicKey: must be "<name>:<base64/),
        'coordinator.system: required (string)',
        'hosts.opi03: unknown field "colour"',
      ]),
    );
  });

  it('refuses ssh options that turn host-key checking off or let ssh prompt', () => {
    const found = problems((json) => {
      json.ssh.options = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=no', '-F', '/tmp/x'];
    });
    expect(found).toEqual([
      'ssh.options[1]: "StrictHostKeyChecking=no" turns host-key checking off; host-key checking stays on and nothing may prompt',
      'ssh.options[3]: "UserKnownHostsFile=/dev/null" throws the known host keys away; host-key checking stays on and nothing may prompt',
      'ssh.options[5]: "BatchMode=no" lets ssh prompt (for a password or a host key); host-key checking stays on and nothing may prompt',
      'ssh.options[6]: "-F" replaces the ssh configuration these options are checked against; host-key checking stays on and nothing may prompt',
    ]);
    expect(() => fleetInventory((json) => (json.ssh.options = ['-o', 'StrictHostKeyChecking=accept-new']))).not.toThrow();
  });

  it('rejects host names and attributes with shell or Nix syntax', () => {
    expect(problems((json) => (json.hosts['opi;reboot'] = json.hosts.opi01))).toEqual([
      expect.stringMatching(/^hosts\["opi;reboot"\]: invalid host name/),
    ]);
    expect(problems((json) => (json.attribute = 'nixosConfigurations.<host>.config.system.build.${x}'))).toEqual([
      'attribute: must be a dotted attribute path',
    ]);
    expect(problems((json) => (json.attribute = 'nixosConfigurations.config'))).toEqual([
      'attribute: must contain "<host>" exactly once, after the first attribute',
    ]);
    expect(problems((json) => (json.flake = 'github:x/y#foo'))).toEqual([
      expect.stringMatching(/^flake: must be a flake reference/),
    ]);
    expect(problems((json) => (json.ssh.options = ['-o', 'ProxyCommand=sh -c id']))).toEqual([
      expect.stringMatching(/^ssh\.options\[1\]: must be one ssh argument/),
    ]);
  });

  it('refuses an IPv6 literal as a deploy target, bracketed or not, naming the field and what to do', () => {
    // nixos-rebuild hands --target-host to ssh (no brackets) and to nix-copy-closure's ssh:// URI (brackets): see lib/inventory/schema.ts.
    const ipv6Target = /^hosts\.opi02\.address: an IPv6 address cannot be a deploy target's address: .*give the host a name/;
    // Before: "[fd00::13]" passed and every ssh call failed with "Could not resolve hostname [fd00::13]".
    expect(problems((json) => (json.hosts.opi02.address = '[fd00::13]'))).toEqual([expect.stringMatching(ipv6Target)]);
    // Before: "fd00::13" passed and became ssh://nix-builder@fd00::13, which Nix 2.31 cannot parse.
    expect(problems((json) => (json.hosts.opi02.address = 'fd00::13'))).toEqual([expect.stringMatching(ipv6Target)]);
    expect(problems((json) => (json.hosts.opi02.address = '[cafe]'))).toEqual(['hosts.opi02.address: brackets are for an IPv6 address only; "cafe" is not one']);
    expect(problems((json) => (json.coordinator.address = '10.0.0.256'))).toEqual(['coordinator.address: must be a DNS name or an IP address: "10.0.0.256" is neither']);
    // The coordinator may have one: its ssh:// store URI is bracketed, its ssh destination not (test/unit/addresses.test.ts).
    expect(fleetInventory((json) => (json.coordinator.address = '[fd00::1]')).coordinator.address).toEqual({ kind: 'ipv6', host: 'fd00::1' });
  });

  it('refuses a cache.url the cache\'s paths cannot be resolved beneath, or fetch cannot request', () => {
    // Before: accepted, and the narinfo URL became http://hawk.internal:5000/?priority=30/<hash>.narinfo.
    for (const url of ['http://hawk.internal:5000/?priority=30', 'http://hawk.internal:5000/#x']) {
      expect(problems((json) => (json.cache.url = url))).toEqual([expect.stringMatching(/^cache\.url: must not have a query or fragment/)]);
    }
    expect(problems((json) => (json.cache.url = 'http://avl:secret@hawk.internal:5000'))).toEqual([
      'cache.url: must not hold a user or password: fetch refuses URLs with credentials',
    ]);
  });

  it("refuses the plan's placeholder syntax in commands it will fill", () => {
    expect(problems((json) => (json.health = { commands: [['test', '-e', '{{previous-system}}']] }))).toEqual([
      "health.commands[0][2]: must not contain {{ (the plan's placeholder syntax)",
    ]);
    expect(problems((json) => (json.nixosRebuild = { extraArgs: ['--option', 'x', '{{run-id}}'] }))).toEqual([
      "nixosRebuild.extraArgs[2]: must not contain {{ (the plan's placeholder syntax)",
    ]);
  });

  it('checks that the seed is a known builder', () => {
    expect(problems((json) => (json.seed = 'opi09'))).toEqual(["seed: unknown host 'opi09'; known: opi01, opi02, opi03"]);
    expect(problems((json) => delete json.hosts.opi03.builder)).toEqual([
      'seed: host \'opi03\' has no "builder" entry, so it cannot build',
    ]);
  });

  it('says what is wrong with the file itself', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inventory-'));
    await expect(loadInventory(join(dir, 'missing.json'))).rejects.toThrow(/^inventory not found: .*missing\.json$/);
    await writeFile(join(dir, 'broken.json'), '{ "hosts": ');
    await expect(loadInventory(join(dir, 'broken.json'))).rejects.toThrow(/broken\.json is not valid JSON/);
  });
});

describe('host selection', () => {
  const inventory = fleetInventory((json) => (json.hosts.opi01.tags = ['opi', 'canary']));

  const select = (on: string[], exclude: string[] = []) => resolveSelection(inventory, { on, exclude });
  const known = 'known: opi01, opi02, opi03; tags: @canary, @k3s, @opi';

  it('selects every host when nothing is named, in inventory order', () => {
    expect(select([])).toEqual(['opi01', 'opi02', 'opi03']);
  });

  it('takes names, @tags, globs and comma lists, repeatable, as a union in inventory order', () => {
    expect(select(['opi02', 'opi01', 'opi02'])).toEqual(['opi01', 'opi02']);
    expect(select(['@canary'])).toEqual(['opi01']);
    expect(select(['opi0*'])).toEqual(['opi01', 'opi02', 'opi03']);
    expect(select(['opi0[23]'])).toEqual(['opi02', 'opi03']);
    expect(select(['opi0?'])).toEqual(['opi01', 'opi02', 'opi03']);
    expect(select(['opi03,@canary'])).toEqual(['opi01', 'opi03']);
    expect(select(['opi03', '@canary'])).toEqual(['opi01', 'opi03']);
  });

  it('leaves out what --exclude names, with the same syntax', () => {
    expect(select(['opi0*'], ['opi02'])).toEqual(['opi01', 'opi03']);
    expect(select([], ['@canary'])).toEqual(['opi02', 'opi03']);
    expect(select(['@k3s'], ['opi01,opi03'])).toEqual(['opi02']);
  });

  it('refuses a selector item that matches nothing, naming the known hosts and tags', () => {
    expect(() => select(['opi04'])).toThrow(new UsageError(`unknown host 'opi04'; ${known}`));
    expect(() => select(['opi01,@gpu'])).toThrow(new UsageError(`'@gpu' matches no host; ${known}`));
    expect(() => select(['web*'])).toThrow(new UsageError(`'web*' matches no host; ${known}`));
    // A typo in an exclusion must not deploy the host it meant to spare.
    expect(() => select(['opi0*'], ['opi2'])).toThrow(new UsageError(`--exclude: unknown host 'opi2'; ${known}`));
  });

  it('refuses a selection that leaves nothing', () => {
    expect(() => select(['opi01'], ['@canary'])).toThrow(new UsageError(`nothing left: --exclude '@canary' removes 'opi01'; ${known}`));
  });

  it('refuses an empty selector (an empty variable in a script), which would otherwise mean every host', () => {
    for (const empty of ['', ' ', ',', ' , ']) {
      expect(() => select([empty])).toThrow(new UsageError(`--on '${empty}': an empty selector names no host (every host is --on '*')`));
      expect(() => select(['opi01'], [empty])).toThrow(/^--exclude '.*': an empty selector names no host/);
    }
    expect(() => select(['opi01', ''])).toThrow(UsageError);
  });

  it('takes a shell\'s globs, [!…] included; a leading ! is refused, not a negation', () => {
    expect(() => select(['!opi01'])).toThrow("'!opi01': a leading ! does not negate here; leave hosts out with --exclude");
    expect(() => select(['[!o]*'])).toThrow(/'\[!o\]\*' matches no host/);
    expect(select(['opi0[!1]'])).toEqual(['opi02', 'opi03']);
  });

  it('lists each system\'s builders: --seed, then the inventory seed, then selected builders, then the rest', () => {
    const buildersOf = (hosts: string[], seed?: string, inv = inventory) => systemBuilders(inv, hosts, seed).map((b) => [b.system, b.hosts, b.builders]);
    expect(buildersOf(['opi01'], 'opi02')).toEqual([['aarch64-linux', ['opi01'], ['opi02', 'opi03', 'opi01']]]);
    expect(buildersOf(['opi01'])).toEqual([['aarch64-linux', ['opi01'], ['opi03', 'opi01', 'opi02']]]);
    const noSeed = fleetInventory((json) => delete json.seed);
    expect(buildersOf(['opi02', 'opi01'], undefined, noSeed)).toEqual([['aarch64-linux', ['opi02', 'opi01'], ['opi02', 'opi01', 'opi03']]]);
  });

  it('groups the whole fleet by system: the coordinator\'s own system has no builders and is built by it', () => {
    const whole = wholeFleetInventory();
    expect(systemBuilders(whole, Object.keys(whole.hosts)).map((b) => [b.system, b.hosts, b.builders])).toEqual([
      ['aarch64-linux', ['opi01', 'opi02', 'opi03'], ['opi03', 'opi01', 'opi02']],
      ['x86_64-linux', ['hawk', 'calypso'], []],
    ]);
  });

  it('refuses a seed that builds none of the selected systems, and a system nothing may build', () => {
    const mixed = fleetInventory((json) => {
      json.hosts.opi02.system = 'riscv64-linux';
      delete json.hosts.opi01.builder;
    });
    expect(() => systemBuilders(mixed, ['opi01'], 'opi02')).toThrow('--seed opi02 builds riscv64-linux, and no selected host is riscv64-linux (they are aarch64-linux)');
    expect(() => systemBuilders(wholeFleetInventory(), ['opi01', 'hawk'], 'hawk')).toThrow(
      '--seed hawk: it has no "builder" entry, so it builds nothing; the selected systems\' builders are aarch64-linux: opi03, opi01, opi02; x86_64-linux: none (built by the coordinator hawk)',
    );
    expect(() => systemBuilders(mixed, ['opi01'], 'opi07')).toThrow("unknown host 'opi07'");
    const riscv = fleetInventory((json) => {
      json.hosts.opi02.system = 'riscv64-linux';
      delete json.hosts.opi02.builder;
    });
    expect(() => systemBuilders(riscv, ['opi01', 'opi02'])).toThrow(
      /no host in the inventory can build for riscv64-linux \(opi02\): add a "builder" entry .* nothing is built under emulation/,
    );
  });
});
