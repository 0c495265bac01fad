import { afterEach, describe, expect, it } from 'vitest';
import { builderCheck } from '../../lib/doctor/checks/builders.ts';
import { cacheAnswersCheck, cacheKeyCheck } from '../../lib/doctor/checks/cache.ts';
import { gcRootsCheck } from '../../lib/doctor/checks/gc-roots.ts';
import { doctorChecks } from '../../lib/doctor/checks/index.ts';
import { localBuildCheck } from '../../lib/doctor/checks/local-build.ts';
import { targetCheck } from '../../lib/doctor/checks/targets.ts';
import { createDoctorContext } from '../../lib/doctor/context.ts';
import { runChecks } from '../../lib/doctor/run.ts';
import type { Check } from '../../lib/doctor/types.ts';
import type { Inventory } from '../../lib/inventory/schema.ts';
import {
  doctorInventory,
  FIXTURE_DEP,
  fleet,
  localNix,
  nixConfig,
  NOW,
  NEVER_DEPLOYED,
  onRemote,
  probesGeneration,
  remoteCommand,
  ROOT_DIR,
  rootDirListing,
  rootLine,
  rootsListing,
} from '../helpers/doctor-fleet.ts';
import { FIXTURE_TOPLEVEL, fixture } from '../helpers/fixtures.ts';
import { deadCacheUrl, startTestCache, type TestCache } from '../helpers/http-cache.ts';
import { RecordingExecutor, type Responder } from '../helpers/recording-executor.ts';

const SSH_DEFAULTS = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=10', '-o', 'ServerAliveCountMax=3'];
const TOPLEVEL_NARINFO = '/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn.narinfo';
const DEP_NARINFO = '/7kh07n14rb43dvi221pvih4c9h4iryg3.narinfo';

let cache: TestCache | undefined;
afterEach(async () => {
  await cache?.close();
  cache = undefined;
});

async function servedCache(files: Record<string, string> = { [TOPLEVEL_NARINFO]: fixture('narinfo/signed.narinfo') }): Promise<TestCache> {
  cache = await startTestCache(files);
  return cache;
}

async function check(
  make: (inventory: Inventory) => Check,
  responders: Responder[],
  options: { cacheUrl?: string; onCoordinator?: boolean } = {},
) {
  const inventory = doctorInventory(options.cacheUrl ?? cache?.url ?? (await deadCacheUrl()));
  const executor = new RecordingExecutor(responders);
  const ctx = createDoctorContext({ inventory, executor, onCoordinator: options.onCoordinator ?? true }, NOW);
  return { outcome: await make(inventory).run(ctx), executor };
}

describe('doctor: the cache', () => {
  it('passes when the cache answers with StoreDir /nix/store, naming its priority', async () => {
    await servedCache();
    const { outcome } = await check(cacheAnswersCheck, fleet());
    expect(outcome).toMatchObject({ status: 'pass', summary: 'StoreDir: /nix/store, Priority: 30', tried: [`GET ${cache!.url}/nix-cache-info`] });
  });

  it('fails with "Harmonia down" when nothing answers, and skips the key check', async () => {
    const url = await deadCacheUrl();
    const answers = await check(cacheAnswersCheck, fleet(), { cacheUrl: url });
    expect(answers.outcome.status).toBe('fail');
    expect(answers.outcome.summary).toMatch(/ECONNREFUSED/);
    expect(answers.outcome.hints).toEqual([
      `Harmonia down: curl ${url}/nix-cache-info should answer "StoreDir: /nix/store"`,
      expect.stringMatching(/^Firewall/),
    ]);
    const key = await check(cacheKeyCheck, fleet(), { cacheUrl: url });
    expect(key.outcome).toMatchObject({ status: 'skip', summary: 'the cache does not answer (see above)' });
    expect(key.executor.calls).toEqual([]);
  });

  it('fails a cache with another store directory', async () => {
    await servedCache({ '/nix-cache-info': 'StoreDir: /gnu/store\n' });
    const { outcome } = await check(cacheAnswersCheck, fleet());
    expect(outcome).toMatchObject({ status: 'fail', summary: 'StoreDir: /gnu/store — not /nix/store' });
  });
});

describe('doctor: the cache signing key', () => {
  it('verifies the newest GC root\'s narinfo against cache.publicKey', async () => {
    await servedCache();
    const { outcome } = await check(cacheKeyCheck, fleet());
    expect(outcome.status).toBe('pass');
    expect(outcome.summary).toBe('c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn-fixture-toplevel (GC root c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn-fixture-toplevel) is signed by fixture-cache-1');
    expect(outcome.tried).toContain(`GET ${cache!.url}${TOPLEVEL_NARINFO}`);
    expect(cache!.requests).toEqual(['/nix-cache-info', TOPLEVEL_NARINFO]);
  });

  it.each([
    ['signed-by-other-key', 'key mismatch: signed by other-cache-1', /^Key mismatch: the inventory's cache.publicKey must match/],
    ['tampered', 'key mismatch: the signature by fixture-cache-1 does not verify', /^Key mismatch/],
    ['unsigned', 'path not signed', /^Path not signed/],
  ])('names a %s narinfo: "%s"', async (name, message, hint) => {
    await servedCache({ [TOPLEVEL_NARINFO]: fixture(`narinfo/${name}.narinfo`) });
    const { outcome } = await check(cacheKeyCheck, fleet());
    expect(outcome.status).toBe('fail');
    expect(outcome.summary).toBe(`${message} — c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn-fixture-toplevel (GC root c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn-fixture-toplevel)`);
    expect(outcome.hints).toEqual([expect.stringMatching(hint)]);
  });

  it('falls back to the targets\' current systems when there are no GC roots', async () => {
    await servedCache({ [DEP_NARINFO]: fixture('narinfo/no-references.narinfo') });
    const { outcome } = await check(cacheKeyCheck, fleet(rootsListing({ exitCode: 1, stderr: `find: '${ROOT_DIR}': No such file or directory` })));
    expect(outcome.status).toBe('pass');
    // opi01 runs the fixture toplevel, which this cache does not serve; opi02 runs the dependency, which it does.
    expect(outcome.summary).toBe('7kh07n14rb43dvi221pvih4c9h4iryg3-fixture-dep (current system of opi02) is signed by fixture-cache-1');
    expect(cache!.requests).toEqual(['/nix-cache-info', TOPLEVEL_NARINFO, DEP_NARINFO]);
  });

  it('fails when a pinned path is not served: the cache must serve the cache host\'s store', async () => {
    await servedCache({});
    const { outcome } = await check(cacheKeyCheck, fleet());
    expect(outcome.status).toBe('fail');
    expect(outcome.summary).toMatch(/^none of \d known store paths is served/);
    expect(outcome.details).toContain(`missing: ${FIXTURE_TOPLEVEL} (GC root c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn-fixture-toplevel)`);
    expect(outcome.hints![0]).toMatch(/^Path not signed/);
  });

  it('only warns when nothing is known to check against', async () => {
    await servedCache({});
    const nothing: Responder[] = [rootsListing(rootDirListing()), (spec) => (probesGeneration(spec) ? NEVER_DEPLOYED : undefined)];
    const { outcome } = await check(cacheKeyCheck, fleet(...nothing));
    expect(outcome).toMatchObject({ status: 'warn', summary: 'no known store path to check: no GC roots and no system profiles' });
  });
});

describe('doctor: builders', () => {
  it('runs nix-store --version and reads the platforms as the builder user with the builder key', async () => {
    const { outcome, executor } = await check((inv) => builderCheck(inv, 'opi01'), fleet());
    expect(outcome).toMatchObject({ status: 'pass', summary: 'nix-store (Nix) 2.18.1; builds aarch64-linux natively' });
    // Nix 2.18 does not know `nix config show`: the check falls back to `nix show-config`.
    expect(executor.calls.map((c) => c.argv)).toEqual([
      ['ssh', '-o', 'StrictHostKeyChecking=yes', ...SSH_DEFAULTS, '-i', '/etc/nix/builder-key', 'nix-builder@opi01.internal', '--', 'nix-store --version'],
      ['ssh', '-o', 'StrictHostKeyChecking=yes', ...SSH_DEFAULTS, '-i', '/etc/nix/builder-key', 'nix-builder@opi01.internal', '--',
        'nix --extra-experimental-features nix-command config show --json'],
      ['ssh', '-o', 'StrictHostKeyChecking=yes', ...SSH_DEFAULTS, '-i', '/etc/nix/builder-key', 'nix-builder@opi01.internal', '--',
        'nix --extra-experimental-features nix-command show-config --json'],
    ]);
    expect(outcome.tried).toHaveLength(3);
  });

  it('names an SSH key problem with the document\'s test command, and goes no further', async () => {
    const denied = onRemote('nix-builder@opi02.internal', 'nix-store', { exitCode: 255, stderr: 'nix-builder@opi02.internal: Permission denied (publickey).\n' });
    const { outcome, executor } = await check((inv) => builderCheck(inv, 'opi02'), fleet(denied));
    expect(outcome.status).toBe('fail');
    expect(outcome.summary).toBe('ssh exited with 255');
    expect(outcome.details).toEqual(['| nix-builder@opi02.internal: Permission denied (publickey).']);
    expect(outcome.hints).toEqual([
      "SSH key issue: test with ssh -i /etc/nix/builder-key nix-builder@opi02.internal — the key must be in nix-builder's authorized_keys there",
      'Builder offline: Nix falls back to local build (QEMU) if no builders respond',
    ]);
    expect(executor.calls).toHaveLength(1);
  });

  it('tells a missing nix-store apart from an SSH failure', async () => {
    const missing = onRemote('nix-builder@opi01.internal', 'nix-store', { exitCode: 127, stderr: 'sh: nix-store: not found\n' });
    const { outcome } = await check((inv) => builderCheck(inv, 'opi01'), fleet(missing));
    expect(outcome).toMatchObject({ status: 'fail', summary: 'nix-store --version exited with 127' });
    expect(outcome.hints![0]).toMatch(/^nix-store must be on nix-builder's PATH/);
  });

  it('fails a builder that cannot build the system it is listed for, and accepts extra-platforms', async () => {
    const x86 = onRemote('nix-builder@opi03.internal', 'nix --extra', nixConfig('x86_64-linux', ['i686-linux']));
    const wrong = await check((inv) => builderCheck(inv, 'opi03'), fleet(x86));
    expect(wrong.outcome).toMatchObject({ status: 'fail', summary: 'nix-store (Nix) 2.18.1; builds x86_64-linux, i686-linux — not aarch64-linux' });
    expect(wrong.outcome.hints![0]).toMatch(/^Wrong system: opi03 must build aarch64-linux/);

    const emulating = onRemote('nix-builder@opi03.internal', 'nix --extra', nixConfig('x86_64-linux', ['aarch64-linux']));
    const extra = await check((inv) => builderCheck(inv, 'opi03'), fleet(emulating));
    expect(extra.outcome).toMatchObject({ status: 'pass', summary: 'nix-store (Nix) 2.18.1; builds aarch64-linux through extra-platforms' });
  });

  it('reads the configuration with `nix config show` where the builder\'s Nix knows it, whatever its version says', async () => {
    const newer = onRemote('nix-builder@opi01.internal', 'nix --extra-experimental-features nix-command config show', nixConfig('aarch64-linux'));
    const lix = onRemote('nix-builder@opi01.internal', 'nix-store --version', { stdout: 'nix-store (Lix, like Nix) 2.91.1\n' });
    const { outcome, executor } = await check((inv) => builderCheck(inv, 'opi01'), fleet(newer, lix));
    expect(outcome).toMatchObject({ status: 'pass', summary: 'nix-store (Lix, like Nix) 2.91.1; builds aarch64-linux natively' });
    expect(executor.calls.map((c) => c.argv.at(-1))).toEqual(['nix-store --version', 'nix --extra-experimental-features nix-command config show --json']);
  });

  it('does not fall back when `nix config show` fails for another reason', async () => {
    const broken = onRemote('nix-builder@opi01.internal', 'nix --extra-experimental-features nix-command config show', {
      exitCode: 1,
      stderr: "error: syntax error in configuration line 'builders = @/etc/nix/machines x' in '/etc/nix/nix.conf'\n",
    });
    const { outcome, executor } = await check((inv) => builderCheck(inv, 'opi01'), fleet(broken));
    expect(outcome).toMatchObject({ status: 'fail', summary: 'reading the Nix configuration exited with 1' });
    expect(executor.calls).toHaveLength(2);
  });
});

describe('doctor: targets', () => {
  it('reports the current system generation, read as the deploy reads it, as the deploy user', async () => {
    const { outcome, executor } = await check((inv) => targetCheck(inv, 'opi01'), fleet());
    expect(outcome).toMatchObject({ status: 'pass', summary: `system-2-link → ${FIXTURE_TOPLEVEL}` });
    const argv = executor.calls[0]!.argv;
    expect(argv.slice(0, -1)).toEqual(['ssh', '-o', 'StrictHostKeyChecking=yes', ...SSH_DEFAULTS, 'deploy@opi01.internal', '--']);
    expect(argv.at(-1)).toMatch(/^sh -c '.*' avalanche-probe \/nix\/var\/nix\/profiles\/system \/run\/current-system$/s);
  });

  it('fails a target whose deploy user cannot sudo -n, with the fix', async () => {
    const refused = onRemote('deploy@opi01.internal', 'sudo -n -- true', { exitCode: 1, stderr: 'sudo: a password is required\n' });
    const { outcome, executor } = await check((inv) => targetCheck(inv, 'opi01'), fleet(refused));
    expect(outcome).toMatchObject({ status: 'fail', summary: 'sudo -n (no password prompt) exited with 1', details: ['| sudo: a password is required'] });
    expect(outcome.hints).toEqual([expect.stringMatching(/passwordless sudo/)]);
    expect(executor.calls.map((c) => c.argv.at(-1))).toContain('sudo -n -- true');
  });

  it('says when the running system is not the profile\'s', async () => {
    const tested = onRemote('deploy@opi01.internal', 'sh -c', { stdout: `system-2-link\n${FIXTURE_TOPLEVEL}\n${FIXTURE_DEP}\n` });
    const { outcome } = await check((inv) => targetCheck(inv, 'opi01'), fleet(tested));
    expect(outcome.summary).toBe(`system-2-link → ${FIXTURE_TOPLEVEL}; running ${FIXTURE_DEP} (not activated yet, or a test activation)`);
  });

  it('warns about a host never deployed and fails one that does not answer', async () => {
    const empty = await check((inv) => targetCheck(inv, 'opi02'), fleet(onRemote('deploy@opi02.internal', 'sh -c', NEVER_DEPLOYED)));
    expect(empty.outcome).toMatchObject({ status: 'warn', summary: 'no /nix/var/nix/profiles/system yet' });
    const down = onRemote('deploy@opi02.internal', 'sh -c', { exitCode: 255, stderr: 'ssh: connect to host opi02.internal port 22: Connection timed out\n' });
    const failed = await check((inv) => targetCheck(inv, 'opi02'), fleet(down));
    expect(failed.outcome).toMatchObject({ status: 'fail', summary: 'ssh exited with 255', details: ['| ssh: connect to host opi02.internal port 22: Connection timed out'] });
  });
});

describe('doctor: GC roots on the cache host', () => {
  it('lists the directory locally on the coordinator and over SSH as coordinator.user elsewhere', async () => {
    const local = await check(gcRootsCheck, fleet(), { onCoordinator: true });
    expect(local.outcome).toMatchObject({ status: 'pass', summary: '1 root, 0 dangling, 0 older than 30 days (the weekly prune removes those)' });
    expect(local.executor.calls[0]!.argv).toEqual(['find', ROOT_DIR, '-maxdepth', '1', '-printf', '%d\\t%y\\t%Y\\t%T@\\t%f\\t%l\\n']);
    const remote = await check(gcRootsCheck, fleet(), { onCoordinator: false });
    expect(remote.outcome.status).toBe('pass');
    expect(remote.executor.calls[0]!.argv).toEqual([
      'ssh', '-o', 'StrictHostKeyChecking=yes', ...SSH_DEFAULTS, 'root@hawk.internal', '--',
      `find ${ROOT_DIR} -maxdepth 1 -printf '%d\\t%y\\t%Y\\t%T@\\t%f\\t%l\\n'`,
    ]);
  });

  it('fails a missing or empty directory with "Missing GC root"', async () => {
    const missing = await check(gcRootsCheck, fleet(rootsListing({ exitCode: 1, stderr: `find: '${ROOT_DIR}': No such file or directory\n` })));
    expect(missing.outcome).toMatchObject({ status: 'fail', summary: `${ROOT_DIR} does not exist` });
    expect(missing.outcome.hints).toEqual([expect.stringMatching(/^Missing GC root: check \/nix\/var\/nix\/gcroots\/arm-cache\//)]);
    const empty = await check(gcRootsCheck, fleet(rootsListing(rootDirListing())));
    expect(empty.outcome).toMatchObject({ status: 'fail', summary: `${ROOT_DIR} holds no roots` });
  });

  it('lists dangling roots and counts those older than 30 days', async () => {
    const listing = rootDirListing(
      rootLine(FIXTURE_TOPLEVEL, { ageDays: 2 }),
      rootLine('/nix/store/0000000000000000000000000000000a-gone', { dangling: true, ageDays: 45 }),
      rootLine(FIXTURE_DEP, { ageDays: 31 }),
      rootLine('/nix/store/0000000000000000000000000000000b-recent', { ageDays: 29 }),
    );
    const { outcome } = await check(gcRootsCheck, fleet(rootsListing(listing)));
    expect(outcome).toMatchObject({
      status: 'warn',
      summary: '4 roots, 1 dangling, 2 older than 30 days (the weekly prune removes those)',
      details: ['dangling: 0000000000000000000000000000000a-gone -> /nix/store/0000000000000000000000000000000a-gone'],
      hints: ['Dangling symlink: the target store path was manually deleted; re-build and re-pin'],
    });
  });

  it('names the cache host when it does not answer SSH', async () => {
    const down = rootsListing({ exitCode: 255, stderr: 'ssh: connect to host hawk.internal port 22: Connection refused\n' });
    const { outcome } = await check(gcRootsCheck, fleet(down), { onCoordinator: false });
    expect(outcome).toMatchObject({ status: 'fail', summary: 'ssh exited with 255', hints: ['The cache host must answer SSH: ssh root@hawk.internal -- true must work by hand'] });
  });
});

describe('doctor: local builds', () => {
  it('passes when this machine cannot build the builders\' system itself', async () => {
    const { outcome, executor } = await check(localBuildCheck, fleet());
    expect(outcome).toMatchObject({ status: 'pass', summary: 'system x86_64-linux, extra-platforms i686-linux' });
    // Nix 2.8 here: `nix config show` is not a recognised command, `nix show-config` answers.
    expect(executor.calls.map((c) => c.argv)).toEqual([
      ['nix', '--extra-experimental-features', 'nix-command', 'config', 'show', '--json'],
      ['nix', '--extra-experimental-features', 'nix-command', 'show-config', '--json'],
    ]);
  });

  it('asks `nix config show` alone where this Nix knows it (Nix 2.20 on, Lix), without looking at its version', async () => {
    const newer = localNix('nix --extra-experimental-features nix-command config show', nixConfig('x86_64-linux'));
    const { outcome, executor } = await check(localBuildCheck, fleet(newer));
    expect(outcome.status).toBe('pass');
    expect(executor.calls.map((c) => c.argv)).toEqual([['nix', '--extra-experimental-features', 'nix-command', 'config', 'show', '--json']]);
  });

  it('fails when extra-platforms lets it build aarch64-linux (emulation)', async () => {
    const qemu = localNix('nix --extra-experimental-features', nixConfig('x86_64-linux', ['i686-linux', 'aarch64-linux']));
    const { outcome } = await check(localBuildCheck, fleet(qemu));
    expect(outcome.status).toBe('fail');
    expect(outcome.summary).toBe('system x86_64-linux, extra-platforms i686-linux aarch64-linux: would build aarch64-linux itself');
    expect(outcome.hints![0]).toMatch(/^Builder offline: Nix falls back to local build \(QEMU\)/);
  });
});

describe('doctor: running every check', () => {
  it('reports in the checks\' order, asks each shared question once, and turns a throwing check into a failure', async () => {
    await servedCache();
    const inventory = doctorInventory(cache!.url);
    const broken = onRemote('nix-builder@opi02.internal', 'nix --extra', { stdout: 'not json' });
    const executor = new RecordingExecutor(fleet(broken));
    const seen: string[] = [];
    const results = await runChecks(
      doctorChecks(inventory),
      createDoctorContext({ inventory, executor, onCoordinator: true }, NOW),
      (result) => seen.push(result.id),
    );
    expect(seen).toEqual([
      'cache-info', 'cache-key', 'builder:opi01', 'builder:opi02', 'builder:opi03',
      'target:opi01', 'target:opi02', 'target:opi03', 'gc-roots', 'local-build', 'nixos-rebuild',
    ]);
    expect(results.map((r) => [r.id, r.status])).toEqual([
      ['cache-info', 'pass'], ['cache-key', 'pass'], ['builder:opi01', 'pass'], ['builder:opi02', 'fail'], ['builder:opi03', 'pass'],
      ['target:opi01', 'pass'], ['target:opi02', 'pass'], ['target:opi03', 'pass'], ['gc-roots', 'pass'], ['local-build', 'pass'], ['nixos-rebuild', 'pass'],
    ]);
    expect(results[3]!.summary).toMatch(/JSON/);
    expect(executor.calls.filter((c) => c.argv.includes(ROOT_DIR) || remoteCommand(c)?.includes(ROOT_DIR))).toHaveLength(1);
    expect(cache!.requests.filter((r) => r === '/nix-cache-info')).toHaveLength(1);
  });

  it('generations are read once per host although two checks need them', async () => {
    await servedCache({});
    const inventory = doctorInventory(cache!.url);
    const executor = new RecordingExecutor(fleet());
    await runChecks(doctorChecks(inventory), createDoctorContext({ inventory, executor, onCoordinator: true }, NOW));
    const profileReads = executor.calls.filter(probesGeneration);
    expect(profileReads.map((c) => c.argv.find((a) => a.startsWith('deploy@')))).toEqual(['deploy@opi01.internal', 'deploy@opi02.internal', 'deploy@opi03.internal']);
  });
});
