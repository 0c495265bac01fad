/**
 * The lab is one per machine: whoever brings it up holds /run/avalanche-lab.lock.
 * The lock is held by a child started through the project's process runner:
 * `flock LOCK sh -c 'echo locked && exec tail --pid=<this process> -f /dev/null'`. It lives exactly as long
 * as this process (tail exits when we do, even after a SIGKILL), and releasing
 * it early is stopping that child.
 */
import type { Executor } from '../lib/exec/types.ts';
import { BenchError, Interrupted, LAB_LOCK } from './lab.ts';

export interface LabLock {
  readonly waitedMs: number;
  release(): Promise<void>;
}

export async function acquireLabLock(
  executor: Executor,
  options: { timeoutSeconds: number; signal: AbortSignal; onWaiting: () => void },
): Promise<LabLock> {
  const holder = new AbortController();
  const onAbort = () => holder.abort();
  options.signal.addEventListener('abort', onAbort, { once: true });
  const started = Date.now();
  let acquired!: () => void;
  const locked = new Promise<void>((resolve) => (acquired = resolve));
  const running = executor.run(
    {
      // flock --verbose reports on stdout, which stays buffered in flock while it
      // waits for its child: the child says when the lock is held instead.
      argv: ['flock', '--timeout', String(options.timeoutSeconds), LAB_LOCK, 'sh', '-c', 'echo locked && exec tail --pid="$1" -f /dev/null', 'avalanche-lab-lock', String(process.pid)],
    },
    { signal: holder.signal, onLine: (line) => line === 'locked' && acquired() },
  );
  const waiting = setTimeout(options.onWaiting, 1000);
  try {
    const first = await Promise.race([locked.then(() => 'locked' as const), running.then((r) => r)]);
    if (first !== 'locked') {
      if (options.signal.aborted) throw new Interrupted();
      const why = first.stderr.trim().split('\n').pop() ?? '';
      throw new BenchError(`could not take the lab lock ${LAB_LOCK} within ${options.timeoutSeconds} s (${why || `flock exited ${first.exitCode}`})`);
    }
  } finally {
    clearTimeout(waiting);
    // Once held, Ctrl-C must not drop the lock: the lab is still to be torn down.
    options.signal.removeEventListener('abort', onAbort);
  }
  return {
    waitedMs: Date.now() - started,
    release: async () => {
      holder.abort();
      await running;
    },
  };
}
