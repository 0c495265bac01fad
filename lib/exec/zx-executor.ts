/**
 * The one place that starts processes. zx runs each command through bash
 * with every argv element quoted by zx itself (never string-built here), so
 * each element reaches the program as one argument. Each command gets its own
 * session and process group (detached) and is killed as a tree on timeout or
 * abort — descendants that started a session of their own included.
 */
// zx's core alone: the package's index also loads its scripting goods (globby, yaml, fs-extra…), ~50 ms more of
// every run's start-up (measured here, Node 20), for nothing this uses.
import { $, type ProcessPromise } from 'zx/core';
import { LineSplitter } from './line-splitter.ts';
import { descendantsOf, fdTarget, isRunningState, listProcesses, processesHoldingAsync, readProcStat, type ProcStat } from './proc.ts';
import type { CommandLogEntry, CommandResult, CommandSpec, Executor, RunOptions } from './types.ts';

/** From SIGTERM to SIGKILL. */
export const KILL_GRACE_MS = 3000;
/**
 * After the SIGKILL, how long to wait for the output pipes' EOF before closing
 * them: a process that escaped the kill (re-parented before it could be
 * found) may hold them open for as long as it runs.
 */
export const STREAM_GRACE_MS = 1000;
const POLL_MS = 50;

export class ZxExecutor implements Executor {
  readonly log: CommandLogEntry[] = [];

  /**
   * Runs one command (argv, no shell) and resolves with its outcome; never
   * rejects for the command's own failure. With `spec.timeoutMs` or an
   * aborted `options.signal`, the command's tree is stopped (see
   * {@link killTree}) and the result is marked `timedOut`/`aborted`; it then
   * resolves at most KILL_GRACE_MS + 2 × STREAM_GRACE_MS (5 s) after the stop,
   * with whatever output arrived until then, and only once every process the
   * command started (that /proc showed) has exited or the SIGKILL was sent.
   */
  async run(spec: CommandSpec, options: RunOptions = {}): Promise<CommandResult> {
    const { signal, onLine } = options;
    const startedAt = Date.now();
    if (signal?.aborted) return this.record(spec, startedAt, { exitCode: null, signal: null, stdout: '', stderr: '', timedOut: false, aborted: true });

    const child: ProcessPromise = $({
      quiet: true,
      verbose: false,
      nothrow: true,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...spec.env },
    })`${spec.argv}`;
    // What the command's stdout and stderr are (its ends of the sockets Node
    // made): whoever still holds them later was started by it. Read now,
    // while the command surely runs (spawn returns after its exec).
    const outputs = new Set([1, 2].map((fd) => (child.pid === undefined ? undefined : fdTarget(child.pid, fd))).filter((target) => target !== undefined));

    const splitters = {
      stdout: new LineSplitter((line) => onLine?.(line, 'stdout')),
      stderr: new LineSplitter((line) => onLine?.(line, 'stderr')),
    };
    // Our own copy of the output, for a command whose pipes had to be closed
    // before zx saw their end.
    const seen = { stdout: [] as string[], stderr: [] as string[] };
    for (const stream of ['stdout', 'stderr'] as const) {
      child[stream].on('data', (chunk: Buffer) => {
        const text = chunk.toString();
        seen[stream].push(text);
        if (onLine) splitters[stream].push(text);
      });
    }

    let timedOut = false;
    let aborted = false;
    let stopping: Promise<void> | undefined;
    let giveUp: ((value: 'gave-up') => void) | undefined;
    const gaveUp = new Promise<'gave-up'>((resolve) => (giveUp = resolve));
    const deadlines: NodeJS.Timeout[] = [];
    const stop = () => {
      if (stopping) return;
      stopping = killTree(() => child.pid, outputs);
      // The pipes stay open while anything holds them; stop waiting for that.
      deadlines.push(
        setTimeout(() => {
          child.child?.stdout?.destroy();
          child.child?.stderr?.destroy();
        }, KILL_GRACE_MS + STREAM_GRACE_MS),
        // Even a closed pipe does not settle zx until the process itself has
        // exited (one stuck in the kernel, state D, may not).
        setTimeout(() => giveUp?.('gave-up'), KILL_GRACE_MS + 2 * STREAM_GRACE_MS),
      );
    };
    const timer = spec.timeoutMs ? setTimeout(() => ((timedOut = true), stop()), spec.timeoutMs) : undefined;
    const onAbort = () => ((aborted = true), stop());
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const output = await Promise.race([child, gaveUp]);
      await stopping;
      splitters.stdout.flush();
      splitters.stderr.flush();
      return this.record(spec, startedAt, {
        exitCode: output === 'gave-up' ? null : output.exitCode,
        signal: output === 'gave-up' ? null : output.signal,
        stdout: output === 'gave-up' ? seen.stdout.join('') : output.stdout,
        stderr: output === 'gave-up' ? seen.stderr.join('') : output.stderr,
        timedOut,
        aborted,
      });
    } finally {
      clearTimeout(timer);
      for (const deadline of deadlines) clearTimeout(deadline);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private record(spec: CommandSpec, startedAt: number, outcome: Omit<CommandResult, 'argv' | 'startedAt' | 'durationMs'>): CommandResult {
    const result: CommandResult = { argv: spec.argv, startedAt, durationMs: Date.now() - startedAt, ...outcome };
    this.log.push({ argv: spec.argv, exitCode: result.exitCode, startedAt, durationMs: result.durationMs });
    return result;
  }
}

/**
 * Stops a command's whole process tree: SIGTERM, then SIGKILL to whatever is
 * left after KILL_GRACE_MS. Resolves once every process it found has exited
 * (zombies count as exited) or the SIGKILL has been sent.
 *
 * Linux: before the first signal, the tree is read from /proc by parent pid
 * (once a parent dies its children are re-parented and can no longer be
 * found), with each process's start time, so a pid reused later is never
 * signalled. Then, in one go, the command's own process group (the command
 * was started detached: it leads its own session and group), every process
 * found, and every process group they lead or belong to (a descendant that
 * called setsid or setpgid has its own) — never the orchestrator's own group.
 * Killing the group first and at once matters: killing a script's children
 * one by one lets the script run its next step before its own turn (for
 * nixos-rebuild, possibly the activation). Processes that still hold the
 * command's output (`outputs`: fdTarget values of its stdout/stderr) belong
 * to it too, with their descendants: this finds a daemonising descendant that
 * was re-parented before the snapshot (it would keep the run waiting for EOF).
 * The SIGKILL pass reads /proc again for children born since, under every
 * process found that still runs.
 * Without /proc (not Linux), zx's kill (which walks the tree with `ps`) is
 * used besides the group. Until the child is spawned there is no pid, so
 * this retries briefly.
 */
export async function killTree(pidOf: () => number | undefined, outputs: ReadonlySet<string> = new Set()): Promise<void> {
  let root = pidOf();
  for (let retries = 40; root === undefined && retries > 0; retries -= 1) {
    await sleep(POLL_MS);
    root = pidOf();
  }
  if (root === undefined) return;
  const own = readProcStat(process.pid);
  const known = new Map<number, ProcStat>();
  // Read without blocking: signals (a relayed Ctrl-C) must still be answered while a run stops.
  const snapshot = async () => {
    const processes = await listProcesses();
    const holders = (await processesHoldingAsync(outputs, processes.map((stat) => stat.pid))).filter((pid) => pid !== process.pid);
    const alive = [...known.values()].filter(stillRunning).map((stat) => stat.pid);
    const roots = [root, ...holders, ...alive];
    const found = processes.filter((stat) => roots.includes(stat.pid));
    for (const stat of [...found, ...descendantsOf(roots, processes)]) {
      if (!known.has(stat.pid)) known.set(stat.pid, stat);
    }
    return processes.length > 0;
  };
  const signalAll = (signal: NodeJS.Signals, haveProc: boolean) => {
    // A group id stays taken while any member exists, a zombie included, so
    // the groups of processes found (and still the same) are safe to signal.
    const groups = new Set<number>(haveProc ? [] : [root]);
    for (const stat of known.values()) {
      const now = readProcStat(stat.pid);
      if (now && now.startTime === stat.startTime) groups.add(now.pgid);
    }
    for (const group of groups) {
      if (group <= 1 || group === own?.pgid || group === own?.sid) continue;
      tryKill(-group, signal);
    }
    for (const stat of known.values()) if (stillRunning(stat)) tryKill(stat.pid, signal);
    if (!haveProc) void $.kill(root, signal).catch(() => undefined);
  };
  const allGone = () => ![...known.values()].some(stillRunning);

  const haveProc = await snapshot();
  signalAll('SIGTERM', haveProc);
  if (!haveProc) {
    setTimeout(() => signalAll('SIGKILL', false), KILL_GRACE_MS).unref();
    return;
  }
  const deadline = Date.now() + KILL_GRACE_MS;
  // Most exit within milliseconds of the SIGTERM (a stopped build's Nix client): looked at soon, then every POLL_MS.
  for (let wait = 5; !allGone(); wait = Math.min(wait * 2, POLL_MS)) {
    if (Date.now() >= deadline) {
      await snapshot();
      signalAll('SIGKILL', true);
      return;
    }
    await sleep(wait);
  }
}

/** The process's current stat if it is still the same process (same start time) and runs. */
function stillRunning(stat: ProcStat): ProcStat | undefined {
  const now = readProcStat(stat.pid);
  return now && now.startTime === stat.startTime && isRunningState(now.state) ? now : undefined;
}

function tryKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

function sleep(ms: number): Promise<void> {
  // not unref'd: the SIGKILL must still be sent when nothing else keeps Node running
  return new Promise((resolve) => setTimeout(resolve, ms));
}
