/**
 * The one place that starts processes. zx quotes every argv element, so
 * nothing is ever string-built into a shell line. Each command gets its own
 * process group (detached) and is killed as a tree on timeout or abort.
 */
import { $, type ProcessPromise } from 'zx';
import { LineSplitter } from './line-splitter.ts';
import type { CommandLogEntry, CommandResult, CommandSpec, Executor, RunOptions } from './types.ts';

const KILL_GRACE_MS = 3000;

export class ZxExecutor implements Executor {
  readonly log: CommandLogEntry[] = [];

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

    const splitters = {
      stdout: new LineSplitter((line) => onLine?.(line, 'stdout')),
      stderr: new LineSplitter((line) => onLine?.(line, 'stderr')),
    };
    if (onLine) {
      child.stdout.on('data', (chunk: Buffer) => splitters.stdout.push(chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => splitters.stderr.push(chunk.toString()));
    }

    let timedOut = false;
    let aborted = false;
    let settled = false;
    const stop = () => killTree(child, () => settled);
    const timer = spec.timeoutMs ? setTimeout(() => ((timedOut = true), stop()), spec.timeoutMs) : undefined;
    const onAbort = () => ((aborted = true), stop());
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const output = await child;
      settled = true;
      splitters.stdout.flush();
      splitters.stderr.flush();
      return this.record(spec, startedAt, {
        exitCode: output.exitCode,
        signal: output.signal,
        stdout: output.stdout,
        stderr: output.stderr,
        timedOut,
        aborted,
      });
    } finally {
      clearTimeout(timer);
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
 * TERM the whole tree, then KILL what is left after a grace period.
 * The process group first, in one signal: killing a script's children one by
 * one (as zx's kill does) lets the script run its next step before its own
 * turn — for nixos-rebuild, possibly the activation. zx's tree kill then
 * reaches descendants that left the group. Until the child is spawned there
 * is no pid, so retry briefly.
 */
function killTree(child: ProcessPromise, isSettled: () => boolean): void {
  const attempt = (signal: NodeJS.Signals, retries: number): void => {
    const pid = child.pid;
    if (pid === undefined) {
      if (!isSettled() && retries > 0) setTimeout(() => attempt(signal, retries - 1), 50);
      return;
    }
    try {
      process.kill(-pid, signal); // detached: the child leads its own group
    } catch {
      // the group is already gone
    }
    child.kill(signal).catch(() => undefined);
  };
  attempt('SIGTERM', 40);
  const hard = setTimeout(() => isSettled() || attempt('SIGKILL', 40), KILL_GRACE_MS);
  hard.unref();
}
