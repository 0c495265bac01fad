/**
 * The live view as an operator sees it: the real CLI (`tsx
 * scripts/deploy-all.ts`) as the coordinator's user, in a real terminal
 * (tmux, 120×40), its screen captured while it runs and after it exits.
 * While the deploy stage runs, each host is a row under it with its elapsed
 * time and, below, what it is doing now; after the exit the terminal holds
 * the final task list once and the table, with no frame of the live view
 * left in the scrollback. NO_COLOR=1 leaves every colour out, the task list's
 * included; without it the terminal gets colour.
 *
 * Only with the orchestrator on hawk (vitest.config.ts): what a terminal
 * shows does not depend on which coordinator runs the deploy.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZxExecutor } from '../../lib/exec/zx-executor.ts';
import { shellQuote } from '../../lib/util/shell.ts';
import { repoRoot } from '../helpers/fixtures.ts';
import { activated, coordinatorArgv, currentSystem, defaultDeployMethod, inventoryPath, lab, labEnv, labSkipReason, newGeneration, reportDir, until } from './lab.ts';

const executor = new ZxExecutor();
const socket = `avalanche-terminal-${process.pid}`;
const tmux = (...args: string[]) => executor.run({ argv: ['tmux', '-L', socket, ...args], timeoutMs: 10_000 });

const SGR = /\u001b\[[0-9;]*m/;
const SPINNER = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/;
const HOSTS = ['opi01', 'opi02', 'opi03'];

describe.skipIf(!lab)(`the live view in a terminal${lab ? '' : ` (skipped: ${labSkipReason})`}`, () => {
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'avalanche-terminal-'));
  });
  afterAll(async () => {
    await tmux('kill-server');
    // Later files build what the flake holds: not this file's failing activation.
    await newGeneration('terminal-done');
    rmSync(scratch, { recursive: true, force: true });
  });

  /**
   * Starts `args` of scripts/<script>.ts in a new 120×40 terminal, as avl on
   * the coordinator, not as CI (the interactive renderer). Returns the
   * session's name and a function that resolves with the exit status.
   */
  async function inTerminal(name: string, script: 'deploy' | 'deploy-all', args: readonly string[], env: Record<string, string> = {}) {
    const exitFile = join(scratch, `${name}.exit`);
    const argv = coordinatorArgv([
      join(repoRoot, 'node_modules/.bin/tsx'),
      join(repoRoot, 'scripts', `${script}.ts`),
      '--inventory',
      inventoryPath(),
      '--report-dir',
      reportDir(),
      ...args,
    ]);
    const vars = Object.entries({ ...labEnv(), CI: '', TERM: 'xterm-256color', ...env }).map(([k, v]) => `${k}=${shellQuote(v)}`);
    // The pane stays after the exit (sleep), so its screen and scrollback can be read.
    const line = `cd ${shellQuote(repoRoot)} && env ${vars.join(' ')} ${argv.map(shellQuote).join(' ')}; echo $? > ${shellQuote(exitFile)}; exec sleep 600`;
    const started = await tmux('new-session', '-d', '-s', name, '-x', '120', '-y', '40', 'bash', '-c', line);
    expect(started.exitCode, started.stderr).toBe(0);
    const exited = async () => {
      await until(`${name} exits`, () => existsSync(exitFile) && readFileSync(exitFile, 'utf8').trim() !== '', 120_000);
      return Number(readFileSync(exitFile, 'utf8').trim());
    };
    return { session: name, exited };
  }

  /** The visible screen; with `escapes`, its colours as escape sequences. */
  const screen = async (session: string, escapes = false) => (await tmux('capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', session)).stdout;
  /** The scrollback and the screen, from the first line the terminal ever showed. */
  const everything = async (session: string) => (await tmux('capture-pane', '-p', '-S', '-', '-E', '-', '-t', session)).stdout;

  it('deploy-all: a row per host under the deploy stage, live, with its activity and elapsed time; after the exit, the final list once and the table', async () => {
    // Activation takes a few seconds on each host: long enough to be seen doing it.
    await newGeneration('terminal', { activationSeconds: 3 });
    const run = await inTerminal('deploy-all', 'deploy-all', ['--yes']);

    // Watch the screen until the deploy ends: under the deploy stage, what each host's row said it was doing.
    const doing = new Map<string, Set<string>>(HOSTS.map((h) => [h, new Set()]));
    const frames: string[] = [];
    let colouredFrame = '';
    let status: number | undefined;
    run.exited().then((code) => (status = code));
    await until(
      'the deploy ends',
      async () => {
        const frame = await screen(run.session);
        const lines = frame.split('\n');
        const stage = lines.findIndex((l) => /^\S+ deploy \(switch\)/.test(l));
        if (stage >= 0 && lines.slice(stage + 1).some((l) => SPINNER.test(l))) {
          frames.push(frame);
          if (!colouredFrame) colouredFrame = await screen(run.session, true);
          // A running host's row: spinner, name, elapsed time; then, indented under it, what it does now.
          for (const [i, row] of lines.slice(stage + 1).entries()) {
            const host = new RegExp(`^ {2}${SPINNER.source} (opi0\\d) \\((seed, )?wave \\d/\\d\\) · \\d+s$`).exec(row)?.[1];
            const now = /^ {4}› (opi0\d): (.*)$/.exec(lines[stage + 2 + i] ?? '');
            if (host && now?.[1] === host) doing.get(host)!.add(now[2]!.replace(/\d+/g, 'N'));
          }
        }
        return status !== undefined;
      },
      120_000,
    );
    expect(status).toBe(0);

    // While it ran: each host a row under the stage, in every frame; each seen at several steps.
    for (const frame of frames) {
      const lines = frame.split('\n');
      const rows = lines.slice(lines.findIndex((l) => /^\S+ deploy \(switch\)/.test(l)) + 1).filter((l) => /^ {2}\S+ opi0\d/.test(l));
      expect(rows.map((l) => /opi0\d/.exec(l)![0]).sort(), frame).toEqual(HOSTS);
    }
    // The activation step as the default method names it (the direct method's switch-to-configuration prints nothing
    // when it succeeds; nixos-rebuild's row shows its latest line after the step).
    const activating = defaultDeployMethod() === 'direct' ? (step: string) => step === 'switch-to-configuration (switch)' : (step: string) => step === 'nixos-rebuild switch' || /-nixos-system-opiN-/.test(step);
    for (const host of HOSTS) {
      // Several steps, those that last among them: the activation (3 s), the health checks and their settle window
      // (1 s). The probe, the diff, the copy, the profile and the confirmation may pass between two frames.
      const seen = [...doing.get(host)!];
      expect(seen.length, host).toBeGreaterThanOrEqual(3);
      expect(seen.some((step) => step.startsWith('health: holding')), host).toBe(true);
      expect(seen.some(activating), host).toBe(true);
      expect([...doing.get(host)!].some((step) => step.startsWith('health: ')), host).toBe(true);
    }
    // The terminal gets colour (no NO_COLOR): listr2's yellow spinner or green ticks.
    expect(colouredFrame).toMatch(SGR);

    // After the exit: the scrollback and the screen hold every row once, no spinner, and the table once.
    const all = await everything(run.session);
    expect(all).not.toMatch(SPINNER);
    expect(all.match(/^✔ deploy \(switch\) · [\d.]+s$/gm)).toHaveLength(1);
    for (const host of HOSTS) {
      // Its final line says what the switch changed: the closure diff (a first deploy on a fresh lab, the kernel's change after others).
      expect(all.match(new RegExp(`^ {2}✔ ${host}: switch done — (first deploy, [\\d.]+ \\S+|\\d+ changed \\(linux \\S+ → \\S+\\)[^·]*) · [\\d.]+s$`, 'gm')), all).toHaveLength(1);
      expect(all.match(new RegExp(`^ {2}✔ ${host} answers SSH as target$`, 'gm')), all).toHaveLength(1);
    }
    expect(all.match(/^stage \/ host/gm)).toHaveLength(1);
    // The screen ends with the summary: the timeline and the verdict (the table is above, in the scrollback).
    const visible = await screen(run.session);
    expect(visible).toMatch(/^total [\d.]+s — /m);
    expect(visible).toMatch(/^report: .*\.json$/m);
  });

  it('NO_COLOR=1, and a failed activation: not one colour; the failure once, on its row; the end names the host and the report', async () => {
    await newGeneration('terminal-fail', { failActivation: ['opi03'] });
    const run = await inTerminal('no-color', 'deploy', ['opi03'], { NO_COLOR: '1' });
    const frames: string[] = [];
    let status: number | undefined;
    run.exited().then((code) => (status = code));
    await until('the deploy ends', async () => {
      frames.push(await screen(run.session, true));
      return status !== undefined;
    }, 120_000);
    expect(status).toBe(1);
    const all = (await tmux('capture-pane', '-p', '-e', '-S', '-', '-E', '-', '-t', run.session)).stdout;
    for (const frame of [...frames, all]) expect(frame).not.toMatch(SGR);
    expect(frames.some((frame) => /deploy \(switch\)/.test(frame))).toBe(true);

    // Once, on opi03's row: what failed, the command (wrapped to the terminal's width) and its output. The default
    // method's activation: the direct method's ssh to the host, or nixos-rebuild (its ssh options in NIX_SSHOPTS).
    const [program, commandStart] = defaultDeployMethod() === 'direct' ? ['ssh', '$ ssh '] : ['nixos-rebuild', "$ NIX_SSHOPTS='"];
    expect(all.split(`opi03 failed: ${program} exited with 1`).length - 1, all).toBe(1);
    expect(all.split(commandStart).length - 1, all).toBe(1);
    expect(all).toMatch(new RegExp(`^ {2}✖ opi03 failed: ${program} exited with 1$`, 'm'));
    expect(all).toContain('switch-to-configuration: lab fault: activation of opi03 fails');
    // The end: which host failed, and the report.
    expect(all).toMatch(/^error: deploy failed on opi03 \(shown above\)$/m);
    expect(await screen(run.session)).toMatch(/^report: .*\.json$/m);
  });
  it('--interactive: each host\'s closure diff, then the question; no leaves that host as it was, yes activates the other', async () => {
    await newGeneration('terminal-ask', { kernelVersion: '6.1.77' });
    const before = { opi01: currentSystem('opi01'), opi02: currentSystem('opi02') };
    const run = await inTerminal('interactive', 'deploy', ['opi01', 'opi02', '--interactive', '--yes', '--concurrency', '1']);
    const asked = async () => {
      let asking = '';
      await until('a question', async () => /Activate (opi0[12]) \(switch\)\? \[y\/N\] *$/m.test((asking = await screen(run.session))), 120_000);
      return asking;
    };
    const first = await asked();
    // The diff is shown before the question: the kernel's change on this host.
    expect(first).toMatch(/opi0[12]: \d+ changed \(linux [^ ]+ → 6\.1\.77\)/);
    const firstHost = /Activate (opi0[12])/.exec(first.split('\n').reverse().find((l) => l.includes('Activate'))!)![1]!;
    await tmux('send-keys', '-t', run.session, 'n', 'Enter');
    const second = await asked();
    const secondHost = firstHost === 'opi01' ? 'opi02' : 'opi01';
    expect(second.split('\n').reverse().find((l) => l.includes('Activate'))).toContain(`Activate ${secondHost}`);
    await tmux('send-keys', '-t', run.session, 'y', 'Enter');
    expect(await run.exited()).toBe(0);
    expect(currentSystem(firstHost)).toBe(before[firstHost as 'opi01']);
    expect(currentSystem(secondHost)).not.toBe(before[secondHost as 'opi01']);
    expect(activated(secondHost, 'terminal-ask')).toBe(true);
    expect(activated(firstHost, 'terminal-ask')).toBe(false);
    expect(await everything(run.session)).toContain('not activated: declined at the --interactive question');
  });
});
