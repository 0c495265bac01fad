/**
 * Runs a command in a process of its own, under a launcher that only waits.
 *
 * Why: users start the scripts through wrappers (`npx tsx scripts/…`, `just`,
 * which runs tsx). tsx's CLI runs the script in a child process and, on
 * SIGINT or SIGTERM, waits 30 ms for that child to acknowledge the signal
 * from a JS handler (tsx dist/cli.mjs `relaySignalToChild`; dist/preflight.cjs
 * sends the acknowledgement); if none comes it sends the signal again, waits
 * 30 ms more and then SIGKILLs the child. A deploy's event loop is busy for
 * longer than that at times (spawning a dozen ssh commands at once in
 * preflight, drawing the task list), so one Ctrl-C could kill it outright: no
 * report, the lock left behind, its commands orphaned. The process tsx watches
 * is therefore this launcher, whose event loop is idle and acknowledges at
 * once, and the command runs in its child: in the same process group, so a
 * Ctrl-C at the terminal reaches it directly, with the terminal as its stdio.
 * Signals that reach only the launcher (`kill -TERM <pid>`, a relay) are
 * passed on; copies of one arriving within a second count as one there
 * (lib/cli/io.ts interruptOnSignals).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

/** Set in the command's own process, so that it runs instead of launching again. */
const IN_OWN_PROCESS = 'AVALANCHE_OWN_PROCESS';

/**
 * In the launcher: starts this same script as a child (same Node, same
 * arguments: its prebuilt bundle, or else the script with the same loader
 * flags) and resolves with its exit status (128 + signal number when a
 * signal ended it). In the child: runs `command` and resolves with its exit
 * code.
 */
export async function runInOwnProcess(command: () => Promise<number>): Promise<number> {
  if (process.env[IN_OWN_PROCESS] === '1') {
    // Not for what it runs: a script of this repo started from within (a hook, a health command) gets a launcher of its own.
    delete process.env[IN_OWN_PROCESS];
    return command();
  }
  // The command's process starts from the script's prebuilt bundle (lib/cli/script-bundle.ts), else under tsx again.
  const { freshBundle } = await import('./script-bundle.ts');
  const bundle = process.argv[1] ? await freshBundle(process.argv[1]) : undefined;
  const argv = bundle ? [...withoutTsxLoader(process.execArgv), '--enable-source-maps', bundle, ...process.argv.slice(2)] : [...process.execArgv, ...process.argv.slice(1)];
  const child = spawn(process.execPath, argv, {
    stdio: 'inherit',
    env: { ...process.env, [IN_OWN_PROCESS]: '1' },
  });
  const pass = (signal: NodeJS.Signals) => child.kill(signal);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, pass);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
    });
  } finally {
    for (const signal of signals) process.off(signal, pass);
  }
}

/** Node's flags without the ones tsx's CLI adds to load itself (`--require …/tsx/dist/preflight.cjs`, `--import …/tsx/dist/loader.mjs`). */
export function withoutTsxLoader(execArgv: readonly string[]): string[] {
  const isTsx = (value: string | undefined) => value !== undefined && /[\\/]tsx[\\/]dist[\\/]/.test(value);
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    if ((arg === '--require' || arg === '-r' || arg === '--import') && isTsx(execArgv[i + 1])) i++;
    else if (!((arg.startsWith('--require=') || arg.startsWith('--import=')) && isTsx(arg))) kept.push(arg);
  }
  return kept;
}
