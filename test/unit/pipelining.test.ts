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
import { RecordingExecutor, type Responder, type ScriptedResponse, when } from '../helpers/recording-executor.ts';
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

  describe("the build of the others, waiting for the head start's kernel", () => {
    const KERNEL_ID = 7;
    const kernelStop = `@nix {"action":"stop","id":${KERNEL_ID}}`;
    const othersBuild = (spec: CommandSpec) => spec.argv.includes('build') && !buildsOneToplevel(spec);
        /** Nix's log when a goal finds another process holding the lock on its outputs (derivation-goal.cc tryToBuild) */
    const waitsForLock = '@nix {"action":"start","id":12,"level":1,"parent":0,"text":"waiting for lock on \'/nix/store/kc5bd4h3rwk3wyfk1cm59b3hr4ddmbsc-linux-6.1-opi\'","type":111}';
    const built = JSON.stringify(['opi01', 'opi02', 'opi03'].map(() => ({ drvPath: FIXTURE_DRV, outputs: { out: FIXTURE_TOPLEVEL } })));
    const toplevelStart = (spec: CommandSpec) => {
      const machine = spec.argv[spec.argv.indexOf('--builders') + 1]!.split(' ')[0];
      return `@nix {"action":"start","fields":["/nix/store/3k5a9w0v1xw7jqj3l5z5y3pp5ydn8l1g-nixos-system-opi02.drv","${machine}",1,1],"id":9,"level":3,"text":"","type":105}`;
    };

    /** The head start says its kernel ended once the others' build has begun; it ends when `ends` settles. */
    function headStart(othersBegan: Promise<unknown>, ends: Promise<unknown>): Responder {
      return (spec) => (buildsOneToplevel(spec) ? { lines: kernelBuildStart(spec), later: { after: othersBegan, lines: [kernelStop] }, until: ends, stdout: built } : undefined);
    }

    it('starts again when the kernel is built while it builds nothing (it waited for the lock), and then builds', async () => {
      let began!: () => void;
      const othersBegan = new Promise<void>((resolve) => (began = resolve));
      let othersCalls = 0;
      // What the stopped attempt built before it waited stays in the report, once.
      const firmware = '/nix/store/0a1b2c3d4e5f6g7h8i9j0k1l2m3n4p5q-lab-firmware.drv';
      const firmwareBuilt = [
        `@nix {"action":"start","fields":["${firmware}","ssh://nix-builder@opi01.internal",1,1],"id":20,"level":3,"text":"","type":105}`,
        '@nix {"action":"stop","id":20}',
      ];
      const pipeline = await runPipeline([
        headStart(othersBegan, othersBegan),
        // The first waits for the kernel's lock until it is stopped; the second finds the kernel built.
        (spec) => (othersBuild(spec) && ++othersCalls === 1 ? (began(), { lines: [...firmwareBuilt, waitsForLock], untilAborted: true }) : undefined),
      ]);
      const { executor, result } = pipeline;
      expect(result.error).toBeUndefined();
      const builds = executor.calls.map((c, i) => [c, executor.results[i]] as const).filter(([c]) => othersBuild(c));
      expect(builds.map(([, r]) => r?.aborted)).toEqual([true, false]);
      expect(builds[0]![0]).toEqual(builds[1]![0]);
      expect(result.report.hosts.map((h) => h.state)).toEqual(['deployed', 'deployed', 'deployed']);
      expect(result.report.builds.filter((b) => b.drvPath === firmware)).toEqual([expect.objectContaining({ machine: 'ssh://nix-builder@opi01.internal', durationMs: expect.any(Number) })]);
    });

    /**
     * The build of the others, the first attempt waiting for the kernel's lock: `first` and `second` answer
     * the first attempt and the one started beside it (given a promise settled once the second began).
     * `ended`: which of the two ended first ('first' or 'second'), then the other.
     */
    async function besideTheWaitingOne(
      first: (spec: CommandSpec, secondBegan: Promise<void>) => ScriptedResponse,
      second: (secondBegan: Promise<void>) => ScriptedResponse,
    ): Promise<{ pipeline: Awaited<ReturnType<typeof runPipeline>>; aborted: (boolean | undefined)[]; ended: string[] }> {
      let othersBegan!: () => void;
      const began = new Promise<void>((resolve) => (othersBegan = resolve));
      let secondBegan!: () => void;
      const secondBeganPromise = new Promise<void>((resolve) => (secondBegan = resolve));
      let othersCalls = 0;
      const pipeline = await runPipeline([
        headStart(began, began),
        (spec) => {
          if (!othersBuild(spec)) return undefined;
          if (++othersCalls === 1) return othersBegan(), { lines: [waitsForLock], ...first(spec, secondBeganPromise) };
          return secondBegan(), second(secondBeganPromise);
        },
      ]);
      const { executor } = pipeline;
      const others = executor.calls.flatMap((c, i) => (othersBuild(c) ? [i] : []));
      return {
        pipeline,
        aborted: others.map((i) => executor.results[i]?.aborted),
        ended: executor.ended.filter((i) => others.includes(i)).map((i) => (i === others[0] ? 'first' : 'second')),
      };
    }
    const afterMs = (p: Promise<void>, ms: number) => p.then(() => new Promise((resolve) => setTimeout(resolve, ms)));
    const opi02Toplevel = '/nix/store/3k5a9w0v1xw7jqj3l5z5y3pp5ydn8l1g-nixos-system-opi02.drv';
    const toplevelStop = '@nix {"action":"stop","id":9}';

    it('is not stopped when the build starts beside it, and is given the time to say the end of what it built', async () => {
      // A daemon's worker took the freed lock and built opi02's toplevel; the one beside it waited and found it valid.
      const { pipeline, aborted, ended } = await besideTheWaitingOne(
        (spec, secondBegan) => ({
          later: [
            { after: secondBegan, lines: [toplevelStart(spec)] },
            { after: afterMs(secondBegan, 40), lines: [toplevelStop] },
          ],
          untilAborted: true,
        }),
        (secondBegan) => ({ until: afterMs(secondBegan, 10), stdout: built }),
      );
      expect(pipeline.result.error).toBeUndefined();
      expect(ended).toEqual(['second', 'first']);
      expect(aborted).toEqual([true, false]);
      expect(pipeline.result.report.builds.filter((b) => b.drvPath === opi02Toplevel)).toEqual([
        expect.objectContaining({ machine: 'ssh://nix-builder@opi03.internal', durationMs: expect.any(Number) }),
      ]);
      expect(pipeline.result.report.hosts.map((h) => h.state)).toEqual(['deployed', 'deployed', 'deployed']);
    });

    it('what it began and never said the end of is in the report once, without a duration', async () => {
      const { pipeline, ended } = await besideTheWaitingOne(
        (spec, secondBegan) => ({ later: { after: secondBegan, lines: [toplevelStart(spec)] }, untilAborted: true }),
        (secondBegan) => ({ until: afterMs(secondBegan, 10), stdout: built }),
      );
      expect(pipeline.result.error).toBeUndefined();
      expect(ended).toEqual(['second', 'first']);
      const records = pipeline.result.report.builds.filter((b) => b.drvPath === opi02Toplevel);
      expect(records).toHaveLength(1);
      expect(records[0]!.durationMs).toBeUndefined();
    });

    it('a derivation two of them began is in the report once, with the end one of them said', async () => {
      // The first's worker began opi02's toplevel and never said more; the second built it (and said so).
      const { pipeline } = await besideTheWaitingOne(
        (spec, secondBegan) => ({ later: { after: secondBegan, lines: [toplevelStart(spec)] }, untilAborted: true }),
        (secondBegan) => ({ later: { after: secondBegan, lines: [toplevelStart({ argv: ['nix', 'build', '--builders', 'ssh://nix-builder@opi01.internal'] }), toplevelStop] }, until: afterMs(secondBegan, 10), stdout: built }),
      );
      expect(pipeline.result.error).toBeUndefined();
      expect(pipeline.result.report.builds.filter((b) => b.drvPath === opi02Toplevel)).toEqual([
        expect.objectContaining({ machine: 'ssh://nix-builder@opi01.internal', durationMs: expect.any(Number) }),
      ]);
    });

    it('when it succeeds first, the one beside it is stopped', async () => {
      const { pipeline, aborted, ended } = await besideTheWaitingOne(
        (_spec, secondBegan) => ({ until: afterMs(secondBegan, 10), abortable: true, stdout: built }),
        () => ({ untilAborted: true }),
      );
      expect(pipeline.result.error).toBeUndefined();
      expect(ended).toEqual(['first', 'second']);
      expect(aborted).toEqual([false, true]);
      expect(pipeline.result.report.hosts.map((h) => h.state)).toEqual(['deployed', 'deployed', 'deployed']);
    });

    it('when it fails, the build fails and the one beside it is stopped', async () => {
      const { pipeline, aborted } = await besideTheWaitingOne(
        (_spec, secondBegan) => ({ until: afterMs(secondBegan, 10), abortable: true, exitCode: 1, stderr: 'error: builder for nixos-system-opi02 failed with exit code 1' }),
        () => ({ untilAborted: true }),
      );
      expect(pipeline.result.error?.message).toMatch(/^seed build of aarch64-linux on opi03 failed: nix exited with 1/);
      expect(aborted).toEqual([false, true]);
      expect(pipeline.result.report.hosts.map((h) => h.state)).not.toContain('deployed');
    });

    it('what it built elsewhere than on the builders fails the build, though the one beside it succeeded', async () => {
      const elsewhere = (spec: CommandSpec) => toplevelStart(spec).replace(/"ssh:\/\/[^"]*"/, '"ssh://nix-builder@hawk.internal"');
      const { pipeline } = await besideTheWaitingOne(
        (spec, secondBegan) => ({ later: { after: secondBegan, lines: [elsewhere(spec), toplevelStop] }, untilAborted: true }),
        (secondBegan) => ({ until: afterMs(secondBegan, 10), stdout: built }),
      );
      expect(pipeline.result.error?.message).toMatch(/^built elsewhere than on .*nixos-system-opi02 .* on ssh:\/\/nix-builder@hawk\.internal/);
      expect(pipeline.result.report.hosts.map((h) => h.state)).not.toContain('deployed');
    });

    /**
     * Whether each build of the others was stopped, when the head start says `headLines` once the others'
     * build has begun and that build says `othersLines` (it ends 20 ms later, or sooner when stopped):
     * `[false]` when it was left alone, neither stopped nor joined by another beside it.
     */
    async function othersAttempts(headLines: readonly string[], othersLines: (spec: CommandSpec) => string[]): Promise<(boolean | undefined)[]> {
      let began!: () => void;
      const othersBegan = new Promise<void>((resolve) => (began = resolve));
      const othersEnd = othersBegan.then(() => new Promise((resolve) => setTimeout(resolve, 20)));
      const { executor, result } = await runPipeline([
        (spec) => (buildsOneToplevel(spec) ? { lines: kernelBuildStart(spec), later: { after: othersBegan, lines: headLines }, until: othersEnd, stdout: built } : undefined),
        (spec) => (othersBuild(spec) ? (began(), { lines: othersLines(spec), until: othersEnd, abortable: true, stdout: built }) : undefined),
      ]);
      expect(result.error).toBeUndefined();
      return executor.calls.flatMap((c, i) => (othersBuild(c) ? [executor.results[i]?.aborted] : []));
    }

    it('is left alone when its log does not say it waits for a lock', async () => {
      expect(await othersAttempts([kernelStop], () => [])).toEqual([false]);
    });

    it("is left alone when what the head start built is its own toplevel (nothing the others wait for)", async () => {
      const ownToplevel = [
        `@nix {"action":"start","fields":["${FIXTURE_DRV}","ssh://nix-builder@opi03.internal",1,1],"id":8,"level":3,"text":"","type":105}`,
        '@nix {"action":"stop","id":8}',
      ];
      expect(await othersAttempts(ownToplevel, () => [waitsForLock])).toEqual([false]);
    });

    it('is left alone when the kernel is built while it builds something of its own', async () => {
      expect(await othersAttempts([kernelStop], (spec) => [waitsForLock, toplevelStart(spec)])).toEqual([false]);
    });
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
