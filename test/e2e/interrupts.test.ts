/**
 * One Ctrl-C, typed in a real terminal through the wrappers users type
 * (`npx tsx scripts/deploy-all.ts`, `npx just nix deploy-all`): the terminal
 * signals the whole foreground process group and each wrapper relays the
 * signal again, so the deploy receives it two or three times within
 * milliseconds. Each time it must stop once, gracefully: exit 130, the
 * report written (outcome interrupted), the lock released, nothing of the
 * run left running. 20 tries per wrapper, each in a real pseudo-terminal
 * (util-linux `script`): the ^C byte goes through the terminal's line
 * discipline, which signals the foreground process group, as a person's
 * Ctrl-C does.
 *
 * Only with the orchestrator on hawk: how signals reach it through a
 * terminal does not depend on which coordinator runs it.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shellQuote } from '../../lib/util/shell.ts';
import { ZxExecutor } from '../../lib/exec/zx-executor.ts';
import { repoRoot } from '../helpers/fixtures.ts';
import { coordinatorArgv, inventoryCopy, lab, labEnv, labPath, labSkipReason, newGeneration, reportDir, until } from './lab.ts';

const TRIES = 20;
/** 20 tries take 70 s on an idle machine and about 3 min beside the unit tests on 2 cores: room for that, bounded. */
const TRY_BUDGET_MS = 10 * 60_000;
const executor = new ZxExecutor();

/** What of a try still runs: avl's processes whose command line names its report directory (ssh's masters: ssh -O exit closes them). */
async function stillRunning(reports: string): Promise<string[]> {
  const ps = await executor.run({ argv: ['pgrep', '-a', '-u', 'avl', '-f', '--', reports], timeoutMs: 10_000 });
  return ps.stdout.split('\n').filter((line) => line.trim() !== '');
}

const controlDirs = () => readdirSync(tmpdir()).filter((name) => name.startsWith('avalanche-ssh-'));

/**
 * Runs `argv` in a pseudo-terminal of its own; once `ready` appears in its
 * output, types ^C; resolves with its exit status (as a shell's $? has it)
 * and what it printed.
 */
function interruptedInTerminal(argv: readonly string[], env: NodeJS.ProcessEnv, ready: string): Promise<{ exit: number; output: string }> {
  return new Promise((resolve, reject) => {
    // -e: script exits with the command's status; -f: output as it comes; the command line is sh's.
    // The terminal gets a size (script's has none when its own stdin is a pipe, and a 0-column terminal shows nothing).
    const line = `stty cols 120 rows 40 && exec ${argv.map(shellQuote).join(' ')}`;
    const child = spawn('script', ['-qefc', line, '/dev/null'], { cwd: repoRoot, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let typed = false;
    const watchdog = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`no end within 60 s; it printed:\n${output.slice(-3000)}`))), 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (!typed && output.includes(ready)) {
        typed = true;
        child.stdin.write('\x03');
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      resolve({ exit: code ?? 128 + (signal === 'SIGKILL' ? 9 : 0), output });
    });
  });
}

describe.skipIf(!lab)(`one Ctrl-C in a terminal through npx and just${lab ? '' : ` (skipped: ${labSkipReason})`}`, () => {
  let controlDirsBefore: string[] = [];
  beforeAll(async () => {
    controlDirsBefore = controlDirs();
    // A kernel that outlasts every try: each run is interrupted while it is busy, never after it finished.
    await newGeneration('ctrl-c', { kernelSeconds: 600 });
  });
  afterAll(async () => {
    // Every try's ssh control directory was removed.
    expect(controlDirs().filter((d) => !controlDirsBefore.includes(d))).toEqual([]);
    // Later files build what the flake holds: not this generation's 10-minute kernel.
    await newGeneration('ctrl-c-done');
  });

  const wrappers: Record<string, string[]> = {
    'npx tsx': ['npx', 'tsx', 'scripts/deploy-all.ts'],
    'npx just': ['npx', 'just', 'nix', 'deploy-all'],
  };
  for (const [name, wrapper] of Object.entries(wrappers)) {
    // The two wrappers side by side, each with a deploy lock of its own (the fleet's lock would make one wait).
    it.concurrent(`${name}: ${TRIES} of ${TRIES} single Ctrl-Cs stop the deploy once, gracefully`, async ({ expect }) => {
      const slug = name.replace(' ', '-');
      const lock = labPath('hawk', `deploy-${slug}.lock`);
      const inventory = inventoryCopy(`ctrl-c-${slug}`, (json) => (json.paths = { ...json.paths, lock }));
      const outcomes: string[] = [];
      for (let i = 0; i < TRIES; i += 1) {
        const reports = join(reportDir(), 'ctrl-c', `${slug}-${i}`);
        // Not CI: the interactive renderer, as a person sees it; its signal handlers are in place once a stage shows.
        const env = { ...process.env, ...labEnv(), CI: '', TERM: 'xterm-256color' };
        const run = await interruptedInTerminal(coordinatorArgv([...wrapper, '--yes', '--inventory', inventory, '--report-dir', reports]), env, 'preflight');
        // npm's wrapper of just returns at once while the deploy finishes stopping: wait for the deploy itself.
        await until(`${name} try ${i}: the deploy has ended`, async () => (await stillRunning(reports)).length === 0, 30_000);
        const written = existsSync(reports) ? readdirSync(reports).filter((f) => f.endsWith('.json')) : [];
        const report = written.length === 1 ? JSON.parse(readFileSync(join(reports, written[0]!), 'utf8')) : undefined;
        const outcome = `exit ${run.exit}, ${written.length} report(s)${report ? ` (${report.outcome})` : ''}, lock ${existsSync(lock) ? 'left behind' : 'released'}`;
        outcomes.push(outcome);
        expect(outcome, `try ${i}; it printed:\n${run.output.slice(-3000)}`).toBe('exit 130, 1 report(s) (interrupted), lock released');
      }
      expect(outcomes).toHaveLength(TRIES);
    }, TRY_BUDGET_MS);
  }
});
