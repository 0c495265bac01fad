/**
 * What preflight must catch before a 40-minute seed build: each case fails
 * the run in preflight, with the message and hint, and builds nothing.
 */
import { describe, expect, it } from 'vitest';
import { fixture, FIXTURE_TOPLEVEL } from '../helpers/fixtures.ts';
import { rootDirListing, rootLine, rootsListing } from '../helpers/doctor-fleet.ts';
import { runPipeline, touchedTarget } from '../helpers/pipeline.ts';
import { when } from '../helpers/recording-executor.ts';

// The evaluation runs beside preflight (it reads the flake here, touches no host); a failed check a build needs stops it, and nothing is built.
const built = (calls: readonly { argv: readonly string[] }[]) => calls.some((c) => c.argv.includes('build'));
const pinned = rootsListing(rootDirListing(rootLine(FIXTURE_TOPLEVEL)));

describe('preflight', () => {
  it('refuses the placeholder cache key shipped in hosts.json', async () => {
    const { result, executor } = await runPipeline([], { editInventory: (json) => (json.cache.publicKey = 'hawk.internal:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=') });
    expect(result.report.stages.find((s) => s.name === 'preflight')!.outcome).toBe('failed');
    expect(result.error!.message).toContain('cache.publicKey is the placeholder shipped in hosts.json');
    expect(built(executor.calls)).toBe(false);
  });

  it('finds a cache signing with another key on a pinned path, before building', async () => {
    const { result, executor } = await runPipeline([pinned], { narinfo: fixture('narinfo/signed-by-other-key.narinfo') });
    expect(result.report.stages.find((s) => s.name === 'preflight')!.outcome).toBe('failed');
    expect(result.error!.message).toMatch(/^key mismatch: signed by other-cache-1 — the cache serves \/nix\/store\/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn-fixture-toplevel with Sig: other-cache-1:/);
    expect((result.error as { hints?: string[] }).hints).toEqual([expect.stringMatching(/^Key mismatch:/)]);
    expect(built(executor.calls)).toBe(false);
  });

  it('with --allow-unsigned it goes on, and says so in the report', async () => {
    const { result } = await runPipeline([pinned], { narinfo: fixture('narinfo/signed-by-other-key.narinfo'), plan: { allowUnsigned: true } });
    expect(result.report.stages.find((s) => s.name === 'preflight')!.outcome).toBe('success');
    expect(result.report.warnings!.some((w) => w.startsWith('key mismatch: signed by other-cache-1') && w.endsWith('accepted because of --allow-unsigned'))).toBe(true);
  });

  it('passes when the pinned path verifies with the trusted key', async () => {
    const { result } = await runPipeline([pinned]);
    expect(result.outcome).toBe('success');
  });

  it('a deploy user whose sudo asks for a password fails preflight with the hint, no target touched', async () => {
    const { result, executor } = await runPipeline([when(['deploy@opi02.internal', 'sudo -n -- true'], { exitCode: 1, stderr: 'sudo: a password is required\n' })]);
    expect(result.error!.message).toMatch(/^opi02: the deploy user cannot become root with sudo -n \(no password prompt\): ssh exited with 1\n  \$ ssh .* deploy@opi02\.internal -- 'sudo -n -- true'\n  \| sudo: a password is required$/);
    expect((result.error as { hints?: string[] }).hints).toEqual([expect.stringMatching(/passwordless sudo/)]);
    // A target's check does not hold back the head start (pipelining.test.ts); no target is touched, the seed-build stage never starts.
    expect(touchedTarget(executor.calls)).toBe(false);
    expect(result.report.stages.find((s) => s.name === 'seed-build')!.outcome).toBe('not-started');
  });

  it('a user the Nix daemon does not trust fails before building: the daemon would ignore --builders', async () => {
    const untrusted = when(['store', 'info', '--json'], { stdout: '{"trusted":0,"url":"daemon"}' });
    const { result, executor } = await runPipeline([untrusted]);
    expect(result.error!.message).toMatch(/^the Nix daemon does not trust \S+, so it would ignore --builders and build elsewhere than on the builders it names \(nix store info --json: "trusted": 0/);
    expect((result.error as { hints?: string[] }).hints).toEqual([expect.stringMatching(/to trusted-users in this machine's nix.conf/)]);
    expect(built(executor.calls)).toBe(false);
  });

  it('a GC-root directory the deploy cannot write on hawk fails before building, not at the pin after it', async () => {
    const denied = when(['avalanche-pin-check'], { exitCode: 1, stderr: 'cannot create links in /nix/var/nix/gcroots/arm-cache as deploy\n' });
    const { result, executor } = await runPipeline([denied]);
    expect(result.error!.message).toMatch(/^cannot pin in \/nix\/var\/nix\/gcroots\/arm-cache on hawk: sh exited with 1\n(.|\n)*\| cannot create links in \/nix\/var\/nix\/gcroots\/arm-cache as deploy$/);
    expect(built(executor.calls)).toBe(false);
  });

  it('tells sudo refusing (any wording, e.g. sudo-rs) from ssh failing (exit 255)', async () => {
    const sudoRs = await runPipeline([when(['deploy@opi02.internal', 'sudo -n -- true'], { exitCode: 1, stderr: 'sudo: interactive authentication is required\n' })]);
    expect(sudoRs.result.error!.message).toMatch(/^opi02: the deploy user cannot become root with sudo -n/);
    const ssh = await runPipeline([when(['deploy@opi02.internal', 'sudo -n -- true'], { exitCode: 255, stderr: 'deploy@opi02.internal: Permission denied (publickey).\n' })]);
    expect(ssh.result.error!.message).toMatch(/^opi02 \(target\) does not answer SSH: ssh exited with 255/);
  });
});

describe('the GC roots worth asking the cache about', () => {
  it('are the newest three that point at existing store paths', async () => {
    const { newestLiveRoots, parseRootListing } = await import('../../lib/cache/gc-roots.ts');
    const paths = ['a', 'b', 'c', 'd'].map((x) => `/nix/store/${x.repeat(32)}-${x}`);
    const listing = parseRootListing(rootDirListing(
      rootLine(paths[0]!, { ageDays: 4 }), rootLine(paths[1]!, { ageDays: 1 }), rootLine(paths[2]!, { ageDays: 2, dangling: true }),
      rootLine(paths[3]!, { ageDays: 3 }), rootLine('/var/lib/not-a-store-path', { ageDays: 0 }), rootLine(FIXTURE_TOPLEVEL, { ageDays: 5 }),
    ).stdout!);
    expect(newestLiveRoots(listing).map((r) => r.target)).toEqual([paths[1], paths[3], paths[0]]);
    expect(newestLiveRoots({ exists: false })).toEqual([]);
    expect(newestLiveRoots(undefined)).toEqual([]);
  });
});
