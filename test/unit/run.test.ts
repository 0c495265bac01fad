import { describe, expect, it } from 'vitest';
import { InterruptedError, StageError } from '../../lib/errors.ts';
import { FIXTURE_TOPLEVEL, fixture } from '../helpers/fixtures.ts';
import { asRun, buildsOneToplevel, deployStepsRun, FIXTURE_DRV, isCommand, runPipeline, touchedTarget } from '../helpers/pipeline.ts';
import { when } from '../helpers/recording-executor.ts';

const run = runPipeline;
/** The nixos-rebuilds the run ran, in order, as `<host> rebuild`: each must be its host's planned one. */
function rebuilds(pipeline: Awaited<ReturnType<typeof run>>): string[] {
  const planned = deployStepsRun(pipeline).filter((step) => step.endsWith(' rebuild'));
  expect(pipeline.executor.calls.filter((c) => c.argv[0] === 'nixos-rebuild')).toHaveLength(planned.length);
  return planned;
}

describe('running a plan (recording executor, real HTTP cache)', () => {
  it('runs the stages in order, every host at once (no canary asked for)', async () => {
    const pipeline = await run([]);
    const { result, executor, cacheRequests, plan } = pipeline;
    expect(result.error).toBeUndefined();
    expect(result.outcome).toBe('success');
    // First the first evaluation (opi01 alone, for the head start), beside preflight (it reads the flake here,
    // touches no host); the second only once it ended.
    const [firstEvaluation, restEvaluation] = plan.evaluate.map((e) => asRun(pipeline, e.command));
    expect(executor.calls[0]).toEqual(firstEvaluation);
    // Preflight's SSH logins: the seed's first; then, once the head start (opi01's toplevel, on the seed) is
    // underway, the other builders' and every target's as its root steps will.
    const [seedLogin, ...otherLogins] = [...plan.builds[0]!.builders.map((b) => b.check), ...plan.preflight.targets.map((t) => t.command)].map((c) => asRun(pipeline, c));
    expect([seedLogin, ...otherLogins].every((c) => c!.argv[0] === 'ssh')).toBe(true);
    const loginAt = (login: typeof seedLogin) => executor.calls.findIndex((c) => isCommand(c, login));
    const headStart = asRun(pipeline, plan.builds[0]!.headStart!.build);
    const buildAt = executor.calls.findIndex((c) => isCommand(c, headStart));
    expect(loginAt(seedLogin)).toBeLessThan(buildAt);
    expect(otherLogins.map(loginAt).every((at) => at > buildAt)).toBe(true);
    // The head start waited for preflight's local questions (here: the pinned roots on the cache host, to check
    // the cache's key); the build of all comes after the second evaluation.
    expect(plan.preflight.cacheKey.listRoots.argv.slice(0, 2)).toEqual(['find', '/nix/var/nix/gcroots/arm-cache']);
    expect(executor.calls.slice(0, buildAt)).toContainEqual(asRun(pipeline, plan.preflight.cacheKey.listRoots));
    expect(executor.calls.findIndex((c) => isCommand(c, restEvaluation))).toBeGreaterThan(0);
    expect(executor.calls.findIndex((c) => isCommand(c, asRun(pipeline, plan.builds[0]!.build)))).toBeGreaterThan(buildAt);
    // One wave: every host's nixos-rebuild, none waiting for another's.
    expect(plan.waves).toEqual([['opi01', 'opi02', 'opi03']]);
    expect(rebuilds(pipeline).sort()).toEqual(['opi01 rebuild', 'opi02 rebuild', 'opi03 rebuild']);
    expect(result.report.hosts.map((h) => [h.name, h.state])).toEqual([['opi01', 'deployed'], ['opi02', 'deployed'], ['opi03', 'deployed']]);
    expect(result.report.builds).toEqual([
      { drvPath: '/nix/store/vv8yjil9rfc1l65naywzx34q57jbyvhz-linux-6.1-opi.drv', machine: 'ssh://nix-builder@opi03.internal', startMs: expect.any(Number) },
    ]);
    expect(result.report.stages.map((s) => [s.name, s.outcome])).toEqual([
      ['preflight', 'success'], ['evaluate', 'success'], ['seed-build', 'success'], ['wait-for-cache', 'success'], ['deploy', 'success'],
    ]);
    expect(cacheRequests).toContain('/nix-cache-info');
  });

  it('names the failed host with its command and output tail; the others still deploy', async () => {
    const { result } = await run([
      when(['--flake', '.#opi02'], { exitCode: 1, stderr: 'copying closure...\nerror: cannot connect to opi02.internal\n' }),
    ]);
    expect(result.outcome).toBe('failed');
    expect(result.error).toBeInstanceOf(StageError);
    expect(result.error!.message).toContain('opi02 failed: nixos-rebuild exited with 1');
    expect(result.error!.message).toContain("$ NIX_SSHOPTS='");
    expect(result.error!.message).toContain('  | error: cannot connect to opi02.internal');
    expect(result.report.hosts.map((h) => [h.name, h.state, h.generation])).toEqual([
      ['opi01', 'deployed', 'new'],
      ['opi02', 'rolled-back', 'previous'],
      ['opi03', 'deployed', 'new'],
    ]);
  });

  it('starts no other host when the canary fails', async () => {
    const pipeline = await run([when(['--flake', '.#opi03'], { exitCode: 4, stderr: 'activation failed' })], { plan: { canaries: ['opi03'] } });
    const { result } = pipeline;
    expect(result.error!.message).toContain('opi03 failed: nixos-rebuild exited with 4');
    expect(rebuilds(pipeline)).toEqual(['opi03 rebuild']);
    // Not one step on the others.
    expect(deployStepsRun(pipeline).filter((step) => !step.startsWith('opi03 '))).toEqual([]);
    expect(result.report.hosts.map((h) => h.state)).toEqual(['not-started', 'not-started', 'rolled-back']);
  });

  it('fails preflight naming the unreachable host, before building anything or touching a target', async () => {
    const { result, executor } = await run([when(['deploy@opi01.internal'], { exitCode: 255, stderr: 'ssh: connect to host opi01.internal port 22: No route to host' })]);
    expect(result.error!.message).toContain('opi01 (target) does not answer SSH: ssh exited with 255');
    expect(result.error!.message).toContain('No route to host');
    // The head start may have begun on the builders beside it (pipelining.test.ts): the build of all never did.
    expect(executor.calls.filter((c) => c.argv.includes('build')).every(buildsOneToplevel)).toBe(true);
    expect(touchedTarget(executor.calls)).toBe(false);
    expect(result.report.stages.map((s) => s.outcome)).toEqual(['failed', 'not-started', 'not-started', 'not-started', 'not-started']);
  });

  it('refuses a path signed by another key, with the key-mismatch hint', async () => {
    const { result, executor } = await run([], { narinfo: fixture('narinfo/signed-by-other-key.narinfo') });
    expect(result.error).toBeInstanceOf(StageError);
    expect(result.error!.message).toMatch(/key mismatch: signed by other-cache-1/);
    expect((result.error as StageError).hints.join('\n')).toMatch(/^Key mismatch/m);
    expect(executor.summary().some((s) => s.startsWith('nixos-rebuild'))).toBe(false);
  });

  it('refuses an unsigned path', async () => {
    const { result } = await run([], { narinfo: fixture('narinfo/unsigned.narinfo') });
    expect(result.error!.message).toMatch(/path not signed/);
  });

  it('fails the seed build when something was built locally', async () => {
    const local = when(['build'], {
      stdout: JSON.stringify([{ drvPath: FIXTURE_DRV, outputs: { out: FIXTURE_TOPLEVEL } }]),
      lines: ['@nix {"action":"start","fields":["/nix/store/vv8yjil9rfc1l65naywzx34q57jbyvhz-linux-6.1-opi.drv","",1,1],"id":7,"level":3,"text":"","type":105}'],
    });
    const { result } = await run([local]);
    // The head start fails first: it may build on the seed alone.
    expect(result.error!.message).toBe(
      'built elsewhere than on opi03 (ssh://nix-builder@opi03.internal): linux-6.1-opi (/nix/store/vv8yjil9rfc1l65naywzx34q57jbyvhz-linux-6.1-opi.drv) on this machine',
    );
  });

  it('reports an interrupted run as such and starts nothing after it', async () => {
    const controller = new AbortController();
    const { result, executor } = await run(
      [when(['eval'], () => (controller.abort(), { exitCode: null as unknown as number }))],
      { signal: controller.signal },
    );
    expect(result.outcome).toBe('interrupted');
    expect(result.error).toBeInstanceOf(InterruptedError);
    expect(executor.summary()).not.toContain('nix build');
  });
});
