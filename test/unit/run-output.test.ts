/**
 * What an operator reads after a run, the task list (listr2's plain
 * renderer, as in a CI log) and the end printed by the CLI: a failure is
 * told once, where it happened, with its command, exit status and output;
 * the end names the stage and hosts that failed and the report. And
 * listr2's colours are the ones the command decided, not colorette's.
 */
import { execFile } from 'node:child_process';
import { Chalk } from 'chalk';
import { Listr } from 'listr2';
import { describe, expect, it } from 'vitest';
import { printResult } from '../../lib/cli/deploy.ts';
import type { Io } from '../../lib/cli/io.ts';
import { InterruptedError, StageError } from '../../lib/errors.ts';
import { commandLine } from '../../lib/exec/describe.ts';
import type { RunContext } from '../../lib/stages/context.ts';
import { ShownFailure, subtaskList } from '../../lib/stages/subtasks.ts';
import { repoRoot } from '../helpers/fixtures.ts';
import { asRun } from '../helpers/pipeline.ts';
import { runAndPrint } from '../helpers/printed-run.ts';
import { when } from '../helpers/recording-executor.ts';

const SGR = /\u001b\[[0-9;]*m/;

const occurrences = (text: string, part: string) => text.split(part).length - 1;

describe('a failed run is told once, where it happened', () => {
  it('a host whose nixos-rebuild fails: its command line, exit status and output once; the end names the host and the report', async () => {
    const run = await runAndPrint([when(['--flake', '.#opi01'], { exitCode: 1, stderr: 'error: switch-to-configuration failed (lab fault)' })]);
    expect(run.exitCode).toBe(1);
    const rebuild = asRun(run, run.plan.deploy.hosts.opi01!.rebuild);
    const line = `$ ${commandLine(rebuild)}`;
    expect(run.result.error!.message).toContain(line); // the JSON and the report keep it in full
    expect(occurrences(run.text, line)).toBe(1);
    expect(occurrences(run.text, 'opi01 failed: nixos-rebuild exited with 1')).toBe(1);
    expect(occurrences(run.text, '| error: switch-to-configuration failed (lab fault)')).toBe(1);
    // Where it happened: on opi01's line of the task list.
    expect(run.printed).toMatch(/✖ \[\d\d:\d\d:\d\d\] opi01 \(wave 1\/1\)[^\n]* \[FAILED: opi01 failed: nixos-rebuild exited with 1\n/);
    // The stage's line says how many, not what.
    expect(run.printed).toMatch(/✖ \[\d\d:\d\d:\d\d\] deploy \(switch\)[^\n]* \[FAILED: 1 of 3 hosts failed\]/);
    // The end: which stage and host failed, then the report.
    const end = run.end.split('\n').filter(Boolean);
    expect(end.slice(-2)).toEqual(['error: deploy failed on opi01 (shown above)', `report: ${run.result.reportPath}`]);
  });

  it('a stage without rows (evaluation): its failure once, on its line; the end names the stage', async () => {
    const run = await runAndPrint([when(['eval'], { exitCode: 1, stderr: "error: attribute 'opi01' missing" })]);
    const line = `$ ${commandLine(asRun(run, run.plan.evaluate[0]!.command))}`;
    expect(occurrences(run.text, line)).toBe(1);
    expect(run.printed).toMatch(/✖ \[\d\d:\d\d:\d\d\] evaluate[^\n]* \[FAILED: /);
    expect(run.end.split('\n').filter(Boolean).slice(-2)).toEqual(['error: evaluate failed (shown above)', `report: ${run.result.reportPath}`]);
  });

  it('a stopped rollout: the failed canary once, the others named as not started', async () => {
    const run = await runAndPrint([when(['--flake', '.#opi03'], { exitCode: 1, stderr: 'error: activation failed' })], { canaries: ['opi03'] });
    expect(occurrences(run.text, `$ ${commandLine(asRun(run, run.plan.deploy.hosts.opi03!.rebuild))}`)).toBe(1);
    expect(run.printed).toMatch(/↓ \[\d\d:\d\d:\d\d\] opi01 \(wave 2\/2\) \[SKIPPED: opi01: not started \(wave 1 failed\)\]/);
    expect(run.result.error!.message).toMatch(/\nnot started: opi01, opi02$/);
    expect(run.end).toContain('error: deploy failed on opi03 (shown above); not started: opi01, opi02');
  });

  it('an error no task showed (before the stages) is printed in full at the end', async () => {
    const out: string[] = [];
    const io: Io = { stdout: (t) => out.push(t), stderr: (t) => out.push(t), isTTY: false, env: {} };
    const ok = await runAndPrint([]);
    const result = { ...ok.result, outcome: 'failed' as const, error: new StageError('the deploy lock is held by ci@runner-7 (pid 42)'), report: { ...ok.result.report, stages: ok.result.report.stages.map((s) => ({ ...s, outcome: 'not-started' as const })) } };
    expect(printResult(result, false, undefined, io)).toBe(1);
    expect(out).toContain('error: the deploy lock is held by ci@runner-7 (pid 42)');
  });
});

describe("listr2's colours follow the command's decision (lib/cli/colour.ts)", () => {
  it('none at level 0 (NO_COLOR, not a terminal), whatever colorette thinks; some at level 1 (FORCE_COLOR, a terminal)', async () => {
    const failing = [when(['--flake', '.#opi01'], { exitCode: 1, stderr: 'error: boom' })];
    const plain = await runAndPrint(failing, { colours: new Chalk({ level: 0 }) });
    expect(plain.printed).toContain('✔'); // it did print the task list
    expect(plain.printed).not.toMatch(SGR);
    const coloured = await runAndPrint(failing, { colours: new Chalk({ level: 1 }) });
    expect(coloured.printed).toMatch(/\u001b\[32m✔\u001b\[39m/); // listr2's green tick
    expect(coloured.printed).toMatch(/\u001b\[2m\[\d\d:\d\d:\d\d\]\u001b\[22m/); // the dim timestamp
  });

  // colorette decides once, when listr2 is imported, from process.env alone: a process of its own for each environment.
  const printedWith = (env: Record<string, string>) =>
    new Promise<string>((resolve, reject) => {
      const script = [
        `import { colours } from ${JSON.stringify(`${repoRoot}lib/cli/colour.ts`)};`,
        `import { runAndPrint } from ${JSON.stringify(`${repoRoot}test/helpers/printed-run.ts`)};`,
        'const run = await runAndPrint([], { colours: colours({ env: process.env, isTTY: false }) });',
        'process.stdout.write(run.printed);',
      ].join('\n');
      const { NO_COLOR: _no, FORCE_COLOR: _force, ...inherited } = process.env;
      execFile(`${repoRoot}node_modules/.bin/tsx`, ['--input-type=module', '-e', script], { cwd: repoRoot, env: { ...inherited, ...env }, timeout: 60_000 }, (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
      );
    });
  it('where colorette would decide otherwise: FORCE_COLOR=0 is none, FORCE_COLOR=1 with an empty NO_COLOR is colour', { timeout: 60_000 }, async () => {
    const [off, on] = await Promise.all([printedWith({ FORCE_COLOR: '0' }), printedWith({ FORCE_COLOR: '1', NO_COLOR: '' })]);
    expect(off).toContain('✔ [');
    expect(off).not.toMatch(SGR);
    expect(on).toMatch(/\u001b\[32m✔\u001b\[39m/);
  });
});

describe('subtaskList: a stage fails with every subtask failure, typed, hints merged', () => {
  async function stage(failures: (Error | undefined)[]): Promise<unknown> {
    const listr = new Listr<RunContext, 'silent'>(
      [{ title: 'stage', task: (_ctx, task) => subtaskList(task, failures.map((f, i) => ({ title: `row ${i}`, run: async () => { if (f) throw f; } }))) }],
      { renderer: 'silent' },
    );
    return listr.run({} as RunContext).then(() => undefined, (error: unknown) => error);
  }

  it('passes when every row passes', async () => {
    expect(await stage([undefined, undefined])).toBeUndefined();
  });

  it('one StageError: that one; several: one StageError with every message and each hint once', async () => {
    const one = new StageError('opi01: no', ['hint a']);
    const thrown = await stage([undefined, one]);
    expect(thrown).toBeInstanceOf(ShownFailure);
    expect((thrown as ShownFailure).failure).toBe(one);
    const both = (await stage([new StageError('opi01: no', ['hint a']), new StageError('opi02: no', ['hint a', 'hint b']), undefined])) as ShownFailure;
    expect(both.message).toBe('2 of 3 checks failed');
    expect(both.failure).toBeInstanceOf(StageError);
    expect(both.failure.message).toBe('opi01: no\nopi02: no');
    expect((both.failure as StageError).hints).toEqual(['hint a', 'hint b']);
  });

  it('an interruption wins', async () => {
    const thrown = (await stage([new StageError('opi01: no'), new InterruptedError('opi02: interrupted')])) as ShownFailure;
    expect(thrown.failure).toBeInstanceOf(InterruptedError);
  });
});
