/**
 * One Ctrl-C through a wrapper arrives two or three times within
 * milliseconds (the terminal signals the process group, npx/tsx/just relay
 * it): only an interrupt that comes later is the person asking to quit at
 * once. A hang-up stops the run gracefully, like SIGTERM.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { interruptOnSignals, type Io, RELAYED_SIGNAL_MS } from '../../lib/cli/io.ts';

const io: Io = { stdout: () => {}, stderr: () => {}, isTTY: false, env: {} };
let release: (() => void) | undefined;
afterEach(() => {
  release?.();
  vi.restoreAllMocks();
});

function setUp() {
  let clock = 0;
  const controller = new AbortController();
  const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
  release = interruptOnSignals(controller, io, { now: () => clock });
  return { controller, exit, advance: (ms: number) => (clock += ms) };
}

describe('interrupts', () => {
  it('takes a relayed copy of the first Ctrl-C as the same one, and a later one as "quit now"', () => {
    const { controller, exit, advance } = setUp();
    process.emit('SIGINT', 'SIGINT');
    expect(controller.signal.aborted).toBe(true);
    advance(5);
    process.emit('SIGINT', 'SIGINT');
    advance(RELAYED_SIGNAL_MS - 10);
    process.emit('SIGTERM', 'SIGTERM');
    expect(exit).not.toHaveBeenCalled();
    advance(10);
    process.emit('SIGINT', 'SIGINT');
    expect(exit).toHaveBeenCalledWith(130);
  });

  it('stops gracefully on a hang-up, and a hang-up never quits at once', () => {
    const { controller, exit, advance } = setUp();
    process.emit('SIGHUP', 'SIGHUP');
    expect(controller.signal.aborted).toBe(true);
    advance(RELAYED_SIGNAL_MS * 5);
    process.emit('SIGHUP', 'SIGHUP');
    expect(exit).not.toHaveBeenCalled();
    // Output to the closed terminal no longer crashes the cleanup.
    expect(process.stderr.listenerCount('error')).toBeGreaterThan(0);
  });

  it('drops only write errors of a gone terminal, and only while the run lasts', () => {
    const before = { uncaught: process.listenerCount('uncaughtException'), stderr: process.stderr.listenerCount('error') };
    const { controller } = setUp();
    expect(controller.signal.aborted).toBe(false);
    expect(process.listenerCount('uncaughtException')).toBe(before.uncaught + 1);
    const onError = process.stderr.listeners('error').at(-1) as (error: Error) => void;
    expect(() => onError(Object.assign(new Error('write EIO'), { code: 'EIO', syscall: 'write' }))).not.toThrow();
    expect(() => onError(Object.assign(new Error('write ENOSPC'), { code: 'ENOSPC', syscall: 'write' }))).toThrow('ENOSPC');
    release!();
    release = undefined;
    expect({ uncaught: process.listenerCount('uncaughtException'), stderr: process.stderr.listenerCount('error') }).toEqual(before);
  });
});
