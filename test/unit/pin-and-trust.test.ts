/**
 * What issue 6 changed in the deploy: the seed build pins every toplevel on
 * the cache host with a GC root, and --allow-unsigned lets the cache wait
 * accept what it otherwise refuses, loudly.
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pinRootsArgvs, rootPath } from '../../lib/cache/gc-roots.ts';
import { parseCliArgs } from '../../lib/cli/args.ts';
import type { CommandSpec } from '../../lib/exec/types.ts';
import { planDeploy } from '../../lib/plan/assemble.ts';
import { fillCommand, fillText, toplevelValues } from '../../lib/plan/placeholders.ts';
import { renderPlan } from '../../lib/plan/render.ts';
import type { DeployPlan, PlannedCommand } from '../../lib/plan/types.ts';
import { sshDestination } from '../../lib/remote/host.ts';
import { runPlan } from '../../lib/run/run.ts';
import { FIXTURE_DEP, ROOT_DIR } from '../helpers/doctor-fleet.ts';
import { FIXTURE_KEY, FIXTURE_TOPLEVEL, fixture, fleetInventory } from '../helpers/fixtures.ts';
import { startTestCache, type TestCache } from '../helpers/http-cache.ts';
import { isCommand } from '../helpers/pipeline.ts';
import { RecordingExecutor, remoteWords, type Responder } from '../helpers/recording-executor.ts';

const SSH_DEFAULTS = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=10', '-o', 'ServerAliveCountMax=3'];
const HAWK_SSH = ['ssh', '-o', 'StrictHostKeyChecking=yes', ...SSH_DEFAULTS, 'root@hawk.internal', '--'];
const TOPLEVEL_NARINFO = '/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn.narinfo';
const DEP_NARINFO = '/7kh07n14rb43dvi221pvih4c9h4iryg3.narinfo';
const TOPLEVEL_ROOT = `${ROOT_DIR}/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn-fixture-toplevel`;
const DEP_ROOT = `${ROOT_DIR}/7kh07n14rb43dvi221pvih4c9h4iryg3-fixture-dep`;

// opi01 evaluates to the fixture dependency, opi03 to the fixture toplevel: both have real narinfos.
const outs: Record<string, string> = { opi01: FIXTURE_DEP, opi03: FIXTURE_TOPLEVEL };
/** The plan's pin commands as they run once `outs` are the evaluated toplevels. */
const pinsOf = (plan: DeployPlan): PlannedCommand[] => plan.pin.commands.map((c) => fillCommand(c, toplevelValues(outs)));

describe('planning the GC-root pin', () => {
  const inventory = fleetInventory();

  it('runs the document\'s pin commands locally on the coordinator', () => {
    const plan = planDeploy(inventory, ['opi01', 'opi03'], { goal: 'switch', onCoordinator: true });
    expect(pinsOf(plan).map((c) => c.argv)).toEqual([
      ['mkdir', '-p', ROOT_DIR],
      ['ln', '-sf', '-t', ROOT_DIR, FIXTURE_DEP, FIXTURE_TOPLEVEL],
    ]);
    const fill = (text: string) => fillText(text, toplevelValues(outs));
    expect(plan.pin.roots.map((r) => ({ host: r.host, storePath: fill(r.storePath), root: fill(r.root) }))).toEqual([
      { host: 'opi01', storePath: FIXTURE_DEP, root: DEP_ROOT },
      { host: 'opi03', storePath: FIXTURE_TOPLEVEL, root: TOPLEVEL_ROOT },
    ]);
    expect(plan.coordinator.place).toEqual({ kind: 'local' });
  });

  it('runs them over SSH as coordinator.user@coordinator.address elsewhere, host-key checking kept', () => {
    const plan = planDeploy(inventory, ['opi03'], { goal: 'switch', onCoordinator: false });
    const pins = pinsOf(plan);
    expect(pins.map((c) => c.argv.slice(0, -1))).toEqual([HAWK_SSH, HAWK_SSH]);
    // The words the shell on hawk runs: every path one argument.
    expect(pins.map((c) => remoteWords(c.argv))).toEqual([
      ['mkdir', '-p', ROOT_DIR],
      ['ln', '-sf', '-t', ROOT_DIR, FIXTURE_TOPLEVEL],
    ]);
    expect(plan.coordinator.place.kind === 'ssh' && sshDestination(plan.coordinator.place.host)).toBe('root@hawk.internal');
  });

  it('follows cache.gcRootDir and shows the pin in --dry-run', () => {
    const custom = fleetInventory((json) => (json.cache.gcRootDir = '/nix/var/nix/gcroots/fleet'));
    const plan = planDeploy(custom, ['opi03'], { goal: 'switch', onCoordinator: true });
    const text = renderPlan(plan);
    const seedBuild = text.slice(text.indexOf('3. seed build'), text.indexOf('4. wait for cache'));
    expect(seedBuild).toContain('    $ mkdir -p /nix/var/nix/gcroots/fleet\n');
    expect(seedBuild).toContain("    $ ln -sf -t /nix/var/nix/gcroots/fleet '{{toplevel:opi03}}'\n");
  });
});

describe('the pin commands, run by the real coreutils', () => {
  const run = (argvs: string[][]) => argvs.forEach(([file, ...args]) => execFileSync(file!, args));
  const fakeStore = (dir: string, count: number) =>
    Array.from({ length: count }, (_, i) => {
      const path = join(dir, 'store', `${String(i).padStart(32, '0')}-system-${i}`);
      mkdirSync(path, { recursive: true });
      return path;
    });

  it('link every path as <dir>/<base name>, replacing an old link (new mtime) without writing into what it points at', () => {
    const dir = mkdtempSync(join(tmpdir(), 'avalanche-pin-'));
    try {
      const paths = fakeStore(dir, 3);
      const roots = join(dir, 'gcroots/arm-cache');
      mkdirSync(roots, { recursive: true });
      // A root from an earlier run, a month old: ln must replace it, not follow it into the store path (a directory).
      symlinkSync(paths[0]!, rootPath(roots, paths[0]!));
      execFileSync('touch', ['-h', '-d', '2026-01-01', rootPath(roots, paths[0]!)]);
      run(pinRootsArgvs(roots, paths.map((storePath) => ({ storePath }))));
      expect(readdirSync(roots).sort()).toEqual(paths.map((p) => p.slice(p.lastIndexOf('/') + 1)).sort());
      for (const path of paths) expect(readlinkSync(rootPath(roots, path))).toBe(path);
      expect(lstatSync(rootPath(roots, paths[0]!)).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
      for (const path of paths) expect(readdirSync(path)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('makes the directory, follows a directory that is a symlink, and links a large fleet in a few commands', () => {
    const dir = mkdtempSync(join(tmpdir(), 'avalanche-pin-'));
    try {
      const paths = fakeStore(dir, 250);
      mkdirSync(join(dir, 'elsewhere'));
      symlinkSync(join(dir, 'elsewhere'), join(dir, 'gcroots'));
      const roots = join(dir, 'gcroots/arm-cache');
      const argvs = pinRootsArgvs(roots, paths.map((storePath) => ({ storePath })));
      expect(argvs.map((a) => a.slice(0, 4))).toEqual([['mkdir', '-p', roots], ...Array(3).fill(['ln', '-sf', '-t', roots])]);
      expect(argvs.slice(1).flatMap((a) => a.slice(4))).toEqual(paths);
      run(argvs);
      expect(readdirSync(join(dir, 'elsewhere/arm-cache'))).toHaveLength(250);
      run(argvs);
      expect(readdirSync(join(dir, 'elsewhere/arm-cache'))).toHaveLength(250);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

let cache: TestCache | undefined;
afterEach(async () => {
  await cache?.close();
  cache = undefined;
});

const drvOf = (host: string) => `/nix/store/1vywq121qhh8y6hakaxa5n96fvvznv3k-${host}.drv`;
const fleetNix: Responder[] = [
  (spec) => (spec.argv[0] === 'nix' && spec.argv.includes('eval') ? { stdout: JSON.stringify(Object.fromEntries(Object.entries(outs).map(([h, out]) => [h, { drv: drvOf(h), out }]))) } : undefined),
  (spec) => (spec.argv[0] === 'nix' && spec.argv.includes('build') ? { stdout: JSON.stringify(Object.entries(outs).map(([h, out]) => ({ drvPath: drvOf(h), outputs: { out } }))) } : undefined),
  // The deploy stage is not what these tests are about: end the run at its first nixos-rebuild.
  (spec) => (spec.argv[0] === 'nixos-rebuild' ? { exitCode: 1, stderr: 'stopped by the test' } : undefined),
];

async function deploy(options: { onCoordinator?: boolean; allowUnsigned?: boolean; narinfos?: Record<string, string>; responders?: Responder[] } = {}) {
  cache = await startTestCache(
    options.narinfos ?? { [TOPLEVEL_NARINFO]: fixture('narinfo/signed.narinfo'), [DEP_NARINFO]: fixture('narinfo/no-references.narinfo') },
  );
  const url = cache.url;
  const inventory = fleetInventory((json) => {
    json.cache.url = url;
    json.cache.publicKey = FIXTURE_KEY;
    json.timeouts.cacheWaitSeconds = 1;
  });
  const plan = planDeploy(inventory, ['opi01', 'opi03'], { goal: 'switch', onCoordinator: options.onCoordinator ?? true, allowUnsigned: options.allowUnsigned });
  const executor = new RecordingExecutor([...(options.responders ?? []), ...fleetNix]);
  const result = await runPlan(plan, { executor, signal: new AbortController().signal, renderer: 'silent' });
  const stage = (name: string) => result.report.stages.find((s) => s.name === name)?.outcome;
  return { result, executor, stage, plan };
}

const index = (calls: readonly CommandSpec[], match: (c: CommandSpec) => boolean) => calls.findIndex(match);

describe('the seed build pins what it built', () => {
  it('on the coordinator: mkdir and one ln for every toplevel after the build, before any deploy; the report records the roots', async () => {
    const { result, executor, stage } = await deploy();
    expect(stage('seed-build')).toBe('success');
    const calls = executor.calls;
    const built = index(calls, (c) => c.argv.includes('build'));
    const pins = calls.filter((c) => c.argv[0] === 'mkdir' || c.argv[0] === 'ln').map((c) => c.argv);
    expect(pins).toEqual([
      ['mkdir', '-p', ROOT_DIR],
      ['ln', '-sf', '-t', ROOT_DIR, FIXTURE_DEP, FIXTURE_TOPLEVEL],
    ]);
    expect(index(calls, (c) => c.argv[0] === 'mkdir')).toBeGreaterThan(built);
    expect(index(calls, (c) => c.argv[0] === 'ln')).toBeLessThan(index(calls, (c) => c.argv[0] === 'nixos-rebuild'));
    expect(result.report.pinnedRoots).toEqual([
      { storePath: FIXTURE_DEP, root: DEP_ROOT, on: 'local' },
      { storePath: FIXTURE_TOPLEVEL, root: TOPLEVEL_ROOT, on: 'local' },
    ]);
  });

  it('elsewhere: copies to the coordinator first, then pins there over SSH', async () => {
    const { result, executor, plan } = await deploy({ onCoordinator: false });
    const onHawk = executor.calls.filter((c) => c.argv.includes('root@hawk.internal'));
    // The first two are preflight's: can we pin there, and the pinned roots (to check the cache's key before the build).
    const { gcRootDirWritable, cacheKey } = plan.preflight;
    expect(onHawk.slice(0, 2)).toEqual(expect.arrayContaining([gcRootDirWritable, cacheKey.listRoots]));
    expect(cacheKey.listRoots.argv.at(-1)).toMatch(new RegExp(`^find ${ROOT_DIR} -maxdepth 1 `));
    expect(gcRootDirWritable.argv.at(-1)).toContain('avalanche-pin-check');
    // Then the plan's pins, filled with the toplevels the run evaluated: mkdir, and one ln for them all.
    const pins = pinsOf(plan);
    expect(onHawk.slice(2)).toEqual(pins);
    expect(pins.map((c) => remoteWords(c.argv))).toEqual([['mkdir', '-p', ROOT_DIR], ['ln', '-sf', '-t', ROOT_DIR, FIXTURE_DEP, FIXTURE_TOPLEVEL]]);
    // The copy that ran is the plan's, before the first pin.
    const copy = fillCommand(plan.copyToCoordinator!, toplevelValues(outs));
    expect(executor.calls).toContainEqual(copy);
    expect(index(executor.calls, (c) => isCommand(c, copy))).toBeLessThan(executor.calls.indexOf(onHawk[2]!));
    expect(result.report.pinnedRoots!.map((r) => r.on)).toEqual(['root@hawk.internal', 'root@hawk.internal']);
  });

  it('fails the stage when pinning fails, with the "Missing GC root" hint, and waits for nothing', async () => {
    const denied: Responder = (spec) => (spec.argv[0] === 'ln' ? { exitCode: 1, stderr: `ln: failed to create symbolic link '${TOPLEVEL_ROOT}': Permission denied` } : undefined);
    const { result, stage } = await deploy({ responders: [denied] });
    expect(stage('seed-build')).toBe('failed');
    expect(stage('wait-for-cache')).toBe('not-started');
    expect(result.error!.message).toMatch(/^pinning the toplevels on hawk failed: ln exited with 1/);
    expect((result.error as { hints?: string[] }).hints).toEqual([expect.stringMatching(/^Missing GC root: check \/nix\/var\/nix\/gcroots\/arm-cache\//)]);
    expect(result.report.pinnedRoots).toEqual([]);
  });
});

describe('--allow-unsigned', () => {
  // The toplevel signed by another key; the dependency unsigned (its narinfo without the Sig line).
  const untrusted = {
    [TOPLEVEL_NARINFO]: fixture('narinfo/signed-by-other-key.narinfo'),
    [DEP_NARINFO]: fixture('narinfo/no-references.narinfo').replace(/^Sig: .*\n?/m, ''),
  };

  it('without it, the cache wait refuses an unsigned path and deploys nothing', async () => {
    const { result, executor, stage } = await deploy({ narinfos: untrusted });
    expect(stage('wait-for-cache')).toBe('failed');
    expect(result.error!.message).toMatch(/path not signed|key mismatch/);
    expect(executor.calls.some((c) => c.argv[0] === 'nixos-rebuild')).toBe(false);
    expect(result.report.warnings).toEqual([]);
  });

  it('with it, the wait accepts them, says so in the report, and the deploy goes on', async () => {
    const { result, executor, stage } = await deploy({ narinfos: untrusted, allowUnsigned: true });
    expect(stage('wait-for-cache')).toBe('success');
    expect(executor.calls.some((c) => c.argv[0] === 'nixos-rebuild')).toBe(true);
    expect([...result.report.warnings!].sort()).toEqual([
      `opi01: ${FIXTURE_DEP}: path not signed — accepted because of --allow-unsigned`,
      `opi03: ${FIXTURE_TOPLEVEL}: key mismatch: signed by other-cache-1 — accepted because of --allow-unsigned`,
    ]);
  });

  it('warns about nothing when everything is signed', async () => {
    const { result, stage } = await deploy({ allowUnsigned: true });
    expect(stage('wait-for-cache')).toBe('success');
    expect(result.report.warnings).toEqual([]);
  });

  it('is a flag of both entry points, off by default, and the dry run says it', () => {
    expect(parseCliArgs('deploy', ['opi01']).allowUnsigned).toBe(false);
    expect(parseCliArgs('deploy', ['--allow-unsigned', 'opi01']).allowUnsigned).toBe(true);
    expect(parseCliArgs('deploy-all', ['--allow-unsigned']).allowUnsigned).toBe(true);
    const plan = planDeploy(fleetInventory(), ['opi03'], { goal: 'switch', onCoordinator: true, allowUnsigned: true });
    expect(renderPlan(plan)).toMatch(/^4\. wait for cache .*--allow-unsigned: unsigned or untrusted narinfos ACCEPTED\)$/m);
  });
});
