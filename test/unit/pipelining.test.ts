/**
 * The stages overlap where nothing needs to wait: the evaluations run beside
 * preflight (one after the other), each system's head start (its first
 * host's toplevel) builds on its seed once the seed answered, while the other
 * hosts are evaluated, and a failure anywhere stops what
 * still runs beside it — before any target is touched.
 */
import { describe, expect, it } from 'vitest';
import type { CommandSpec } from '../../lib/exec/types.ts';
import { FIXTURE_TOPLEVEL } from '../helpers/fixtures.ts';
import { asRun, buildsOneToplevel, FIXTURE_DRV, kernelBuildStart, runPipeline, touchedTarget } from '../helpers/pipeline.ts';
import { RecordingExecutor, type Responder, when } from '../helpers/recording-executor.ts';
import type { PlannedCommand } from '../../lib/plan/types.ts';
import { closeConnections } from '../../lib/stages/context.ts';

/** The plan's first evaluation (opi01 alone), and its second (opi02 and opi03). */
const isFirstEvaluation = (spec: CommandSpec) => spec.argv.includes('eval') && spec.argv.at(-1)!.includes('[ "opi01" ]');
const isRestEvaluation = (spec: CommandSpec) => spec.argv.includes('eval') && spec.argv.at(-1)!.includes('[ "opi02" "opi03" ]');

describe('pipelined stages', () => {
  it("a target failing preflight stops the evaluation and the head start running beside it; no target touched", async () => {
    // The target's check answers only once the head start runs (its build checks passed, opi01 evaluated) and holds.
    let headStarted!: () => void;
    const started = new Promise<void>((resolve) => (headStarted = resolve));
    const { result, executor } = await runPipeline([
      (spec) => (isRestEvaluation(spec) ? { untilAborted: true, diesAfterMs: 50 } : undefined),
      // Held once it began building the kernel (its log says so): the targets' logins wait for that.
      (spec) => (buildsOneToplevel(spec) ? (headStarted(), { untilAborted: true, diesAfterMs: 50, lines: kernelBuildStart(spec) }) : undefined),
      when(['deploy@opi02.internal'], { until: started, exitCode: 255, stderr: 'ssh: connect to host opi02.internal port 22: Connection refused' }),
    ]);
    expect(result.outcome).toBe('failed');
    expect(result.error!.message).toContain('opi02 (target) does not answer SSH');
    // Both stopped when the run ended (killed processes), not left behind; the build of all never started.
    expect(executor.results[executor.calls.findIndex(isRestEvaluation)]).toMatchObject({ aborted: true });
    expect(executor.results[executor.calls.findIndex(buildsOneToplevel)]).toMatchObject({ aborted: true });
    expect(executor.calls.filter((c) => c.argv.includes('build'))).toHaveLength(1);
    expect(result.report.stages.map((s) => [s.name, s.outcome])).toEqual([
      ['preflight', 'failed'], ['evaluate', 'not-started'], ['seed-build', 'not-started'], ['wait-for-cache', 'not-started'], ['deploy', 'not-started'],
    ]);
    expect(touchedTarget(executor.calls)).toBe(false);
    // Waited for before the report was made: the killed commands are in its command log, and the head start's
    // build has its span, ended, though its stage never ran.
    expect(result.report.commands.filter((c) => c.argv.includes('eval') || c.argv.includes('build'))).toHaveLength(3);
    expect(result.report.systemBuilds).toEqual([expect.objectContaining({ system: 'aarch64-linux', outcome: 'failed', durationMs: expect.any(Number) })]);
  });

  it('a check the build needs failing preflight (the cache key) stops everything before the head start builds', async () => {
    const { result, executor } = await runPipeline([], { editInventory: (json) => (json.cache.publicKey = 'hawk.internal:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=') });
    expect(result.error!.message).toContain('cache.publicKey is the placeholder');
    expect(executor.calls.some((c) => c.argv.includes('build'))).toBe(false);
    expect(touchedTarget(executor.calls)).toBe(false);
  });

  it('evaluates the others only once the first evaluation ended: one evaluator at a time', async () => {
    let firstEnded = false;
    let restStartedEarly: boolean | undefined;
    const slowFirst: Responder = (spec) => {
      if (isFirstEvaluation(spec)) {
        const ends = new Promise((resolve) => setTimeout(resolve, 100)).then(() => (firstEnded = true));
        return { until: ends, stdout: JSON.stringify({ opi01: { drv: FIXTURE_DRV, out: FIXTURE_TOPLEVEL } }) };
      }
      if (isRestEvaluation(spec)) restStartedEarly = !firstEnded;
      return undefined;
    };
    const { result } = await runPipeline([slowFirst]);
    expect(result.error).toBeUndefined();
    expect(restStartedEarly).toBe(false);
  });

  it('evaluates the others, and logs in to the targets, once the head start began building on the seed: not before, not at its end', async () => {
    // The head start says at once that it began building the kernel, then runs until the others' evaluation and
    // the three targets' logins have come (or 2 s, which fails the test below).
    const isTargetLogin = (spec: CommandSpec) => spec.argv[0] === 'ssh' && spec.argv.some((a) => /^deploy@opi0\d\.internal$/.test(a));
    let headStartAt = -1;
    let headEnded = false;
    const after: string[] = [];
    let cameWhileBuilding!: () => void;
    const came = new Promise<void>((resolve) => (cameWhileBuilding = resolve));
    const pipeline = await runPipeline([
      (spec) => {
        // The first four: the deploy later logs in to the targets again.
        if ((isRestEvaluation(spec) || isTargetLogin(spec)) && after.length < 4) after.push(headStartAt < 0 ? 'before the head start' : headEnded ? 'after its end' : 'while it builds');
        if (after.length === 4) cameWhileBuilding();
        return undefined;
      },
      (spec) => {
        if (!buildsOneToplevel(spec)) return undefined;
        headStartAt = after.length;
    const built = JSON.stringify([{ drvPath: FIXTURE_DRV, outputs: { out: FIXTURE_TOPLEVEL } }]);
        return { lines: kernelBuildStart(spec), stdout: built, until: Promise.race([came, new Promise((resolve) => setTimeout(resolve, 2000))]).then(() => (headEnded = true)) };
      },
    ]);
    expect(pipeline.result.error).toBeUndefined();
    expect(headStartAt).toBe(0);
    expect(after).toEqual(Array(4).fill('while it builds'));
  });

  it('logs in to the targets after 5 s at the latest while the first evaluation still runs: a target that does not answer is told soon', async () => {
    const isTargetLogin = (spec: CommandSpec) => spec.argv[0] === 'ssh' && spec.argv.some((a) => /^deploy@opi0\d\.internal$/.test(a));
    let firstEnded = false;
    let loggedInBeforeItEnded = 0;
    let loggedIn!: () => void;
    const targetsAsked = new Promise<void>((resolve) => (loggedIn = resolve));
    const startedAt = Date.now();
    const pipeline = await runPipeline([
      (spec) => {
        if (!isTargetLogin(spec)) return undefined;
        if (!firstEnded && ++loggedInBeforeItEnded === 3) loggedIn();
        return undefined;
      },
      (spec) => {
        if (!isFirstEvaluation(spec)) return undefined;
        // Ends once the three targets were asked, or after 8 s (which fails the test below).
        const ends = Promise.race([targetsAsked, new Promise((resolve) => setTimeout(resolve, 8000))]).then(() => (firstEnded = true));
        return { until: ends, stdout: JSON.stringify({ opi01: { drv: FIXTURE_DRV, out: FIXTURE_TOPLEVEL } }) };
      },
    ]);
    expect(pipeline.result.error).toBeUndefined();
    expect(loggedInBeforeItEnded).toBe(3);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(4900);
  }, 15_000);

  it("starts the head start on the seed as soon as the seed answered, before the other builders have", async () => {
    // opi01's builder login answers only once the head start runs (or after 2 s, which fails the test below).
    let headStarted!: () => void;
    const started = new Promise<void>((resolve) => (headStarted = resolve));
    let headStartBeforeOpi01 = false;
    let opi01Answered = false;
    const pipeline = await runPipeline([
      (spec) => (buildsOneToplevel(spec) ? ((headStartBeforeOpi01 = !opi01Answered), headStarted(), undefined) : undefined),
      when(['nix-builder@opi01.internal'], () => ({ until: Promise.race([started, new Promise((r) => setTimeout(r, 2000))]).then(() => (opi01Answered = true)) })),
    ]);
    const { result, executor } = pipeline;
    expect(result.error).toBeUndefined();
    expect(headStartBeforeOpi01).toBe(true);
    // On the seed alone; the build of all on every builder that answered, the seed first.
    const [headStart, all] = executor.calls.filter((c) => c.argv.includes('build'));
    const builders = (c: CommandSpec) => c.argv[c.argv.indexOf('--builders') + 1]!.split(' ; ').map((spec) => spec.split(' ')[0]);
    expect(builders(headStart!)).toEqual(['ssh://nix-builder@opi03.internal']);
    expect(builders(all!)).toEqual(['opi03', 'opi01', 'opi02'].map((h) => `ssh://nix-builder@${h}.internal`));
  });

  it("builds the first host's toplevel while the others are still being evaluated", async () => {
    // opi02's and opi03's evaluation ends only once the head start (opi01's toplevel) has started building.
    let headStarted!: () => void;
    const started = new Promise<void>((resolve) => (headStarted = resolve));
    const evaluated = JSON.stringify(Object.fromEntries(['opi02', 'opi03'].map((h) => [h, { drv: FIXTURE_DRV, out: FIXTURE_TOPLEVEL }])));
    const evaluationAfterHeadStart: Responder = (spec) => (isRestEvaluation(spec) ? { until: started, stdout: evaluated } : undefined);
    const recordHeadStart: Responder = (spec) => (buildsOneToplevel(spec) ? (headStarted(), undefined) : undefined);
    const pipeline = await runPipeline([recordHeadStart, evaluationAfterHeadStart]);
    expect(pipeline.result.error).toBeUndefined();
    const { executor, plan } = pipeline;
    const at = (command: Parameters<typeof asRun>[1]) => executor.calls.findIndex((c) => JSON.stringify(c) === JSON.stringify(asRun(pipeline, command)));
    expect(at(plan.builds[0]!.headStart!.build)).toBeLessThan(at(plan.builds[0]!.build));
    expect(pipeline.result.report.hosts.map((h) => h.state)).toEqual(['deployed', 'deployed', 'deployed']);
  });

  it("leaves the build of the others alone when the head start's kernel ends while it waits for that lock: Nix's own look at the lock finds it built", async () => {
    // Stopping it to start it anew raced: a daemon's worker could take the freed lock and build unreported.
    const kernelStop = '@nix {"action":"stop","id":7}';
    /** Nix's log when a goal finds another process holding the lock on its outputs (derivation-goal.cc tryToBuild) */
    const waitsForLock = '@nix {"action":"start","id":12,"level":1,"parent":0,"text":"waiting for lock on \'/nix/store/kc5bd4h3rwk3wyfk1cm59b3hr4ddmbsc-linux-6.1-opi\'","type":111}';
    const built = JSON.stringify(['opi01', 'opi02', 'opi03'].map(() => ({ drvPath: FIXTURE_DRV, outputs: { out: FIXTURE_TOPLEVEL } })));
    const othersBuild = (spec: CommandSpec) => spec.argv.includes('build') && !buildsOneToplevel(spec);
    let began!: () => void;
    const othersBegan = new Promise<void>((resolve) => (began = resolve));
    const othersEnd = othersBegan.then(() => new Promise((resolve) => setTimeout(resolve, 20)));
    const { executor, result } = await runPipeline([
      (spec) => (buildsOneToplevel(spec) ? { lines: kernelBuildStart(spec), later: { after: othersBegan, lines: [kernelStop] }, until: othersEnd, stdout: built } : undefined),
      (spec) => (othersBuild(spec) ? (began(), { lines: [waitsForLock], until: othersEnd, abortable: true, stdout: built }) : undefined),
    ]);
    expect(result.error).toBeUndefined();
    expect(executor.calls.flatMap((c, i) => (othersBuild(c) ? [executor.results[i]?.aborted] : []))).toEqual([false]);
    expect(result.report.hosts.map((h) => h.state)).toEqual(['deployed', 'deployed', 'deployed']);
  });

  it("a failed evaluation of the others fails the seed build naming them, and stops the head start's build", async () => {
    let headStarted!: () => void;
    const started = new Promise<void>((resolve) => (headStarted = resolve));
    const pipeline = await runPipeline([
      (spec) => (buildsOneToplevel(spec) ? (headStarted(), { untilAborted: true, lines: kernelBuildStart(spec) }) : undefined),
      (spec) => (isRestEvaluation(spec) ? { until: started, exitCode: 1, stderr: "error: attribute 'opi03' missing" } : undefined),
    ]);
    const { result, executor } = pipeline;
    expect(result.outcome).toBe('failed');
    expect(result.error!.message).toMatch(/^evaluation of opi02, opi03 failed: nix exited with 1/);
    expect(result.error!.message).toContain("error: attribute 'opi03' missing");
    expect(executor.results[executor.calls.findIndex(buildsOneToplevel)]).toMatchObject({ aborted: true });
    expect(result.report.stages.map((s) => [s.name, s.outcome])).toEqual([
      ['preflight', 'success'], ['evaluate', 'success'], ['seed-build', 'failed'], ['wait-for-cache', 'not-started'], ['deploy', 'not-started'],
    ]);
    expect(touchedTarget(executor.calls)).toBe(false);
  });

  it('closes each reused connection once, when nothing more uses it: the builders once the builds ended, a target once its deploy did', async () => {
    const closes = (spec: CommandSpec) => spec.argv.includes('-O') && spec.argv.includes('exit');
    const closing = (destination: string) => (spec: CommandSpec) => closes(spec) && spec.argv.at(-1) === destination;
    const isProbeOf = (host: string) => (spec: CommandSpec) => spec.argv.includes(`deploy@${host}.internal`) && spec.argv.some((arg) => arg.includes('avalanche-probe'));
    // opi03's deploy starts only once opi01's connection was closed, or after 2 s when it is closed only at the run's end.
    let opi01Closed!: () => void;
    const closed = new Promise<void>((resolve) => (opi01Closed = resolve));
    const { result, executor, plan } = await runPipeline([
      (spec) => (closing('deploy@opi01.internal')(spec) ? (opi01Closed(), undefined) : undefined),
      (spec) => (isProbeOf('opi03')(spec) ? { until: Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2000))]), stdout: 'system-4-link\n/nix/store/old-system\n/nix/store/old-system\n' } : undefined),
    ]);
    expect(result.error).toBeUndefined();
    const at = (matches: (spec: CommandSpec) => boolean) => executor.calls.findIndex(matches);
    const builders = plan.builds.flatMap((b) => b.builders.map((x) => `nix-builder@${x.host}.internal`));
    const targets = ['opi01', 'opi02', 'opi03'].map((h) => `deploy@${h}.internal`);
    // Each once.
    expect([...builders, ...targets].map((d) => executor.calls.filter(closing(d)).length)).toEqual([...builders, ...targets].map(() => 1));
    const lastBuild = executor.calls.findLastIndex((c) => c.argv.includes('build'));
    for (const builder of builders) expect(at(closing(builder))).toBeGreaterThan(lastBuild);
    for (const builder of builders) expect(at(closing(builder))).toBeLessThan(at(isProbeOf('opi01')));
    // Before opi03's last command (its confirmation), which waited for it.
    const lastOf = (destination: string) => executor.calls.findLastIndex((c) => c.argv.includes(destination) && !closes(c));
    expect(at(closing('deploy@opi01.internal'))).toBeLessThan(lastOf('deploy@opi03.internal'));
    // And each after everything its own deploy ran over it.
    for (const target of targets) expect(at(closing(target)), target).toBeGreaterThan(lastOf(target));
  });

  it("closes each of the plan's close commands once, even two that run the same (a builder and a target sharing user@host)", async () => {
    const executor = new RecordingExecutor();
    const asBuilder: PlannedCommand = { argv: ['ssh', '-O', 'exit', 'root@hawk.internal'], timeoutMs: 1000 };
    const asTarget: PlannedCommand = { ...asBuilder };
    const ctx = { values: {}, executor };
    await closeConnections(ctx, [asBuilder]);
    // The target's deploy opened the shared master again after the builder's close: its own close runs too.
    await closeConnections(ctx, [asTarget, asBuilder]);
    await closeConnections(ctx, [asBuilder, asTarget]);
    expect(executor.calls).toEqual([asBuilder, asTarget]);
  });
});
