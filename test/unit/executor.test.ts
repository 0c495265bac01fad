import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { outputTail, succeeded } from '../../lib/exec/types.ts';
import { ZxExecutor } from '../../lib/exec/zx-executor.ts';
import { shellQuote } from '../../lib/util/shell.ts';

/** Whether the pid names a process that still runs (a zombie has finished). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!);
  } catch {
    return false;
  }
}

/** pids a test started; killed afterwards, so a failing test leaves nothing behind. */
const leftovers: number[] = [];
afterEach(() => {
  for (const pid of leftovers.splice(0)) {
    try {
      if (running(pid)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

describe('the process runner (real processes)', () => {
  it('passes every argument as one argv word, shell syntax included', async () => {
    const executor = new ZxExecutor();
    const tricky = `it's; $(echo pwned) && "quoted" *`;
    const result = await executor.run({ argv: ['printf', '%s|', tricky, 'b c'], env: { UNUSED: '1' } });
    expect(result.stdout).toBe(`${tricky}|b c|`);
    expect(succeeded(result)).toBe(true);
    expect(executor.log).toHaveLength(1);
    expect(executor.log[0]).toMatchObject({ argv: ['printf', '%s|', tricky, 'b c'], exitCode: 0 });
  });

  it('streams lines and keeps the exit code', async () => {
    const lines: string[] = [];
    const result = await new ZxExecutor().run(
      { argv: ['sh', '-c', 'echo one; echo two >&2; printf three; exit 3'] },
      { onLine: (line, stream) => lines.push(`${stream}:${line}`) },
    );
    expect(lines.sort()).toEqual(['stderr:two', 'stdout:one', 'stdout:three']);
    expect(result.exitCode).toBe(3);
    expect(succeeded(result)).toBe(false);
    expect(outputTail(result, 2)).toEqual(['one', 'three']);
    // ssh ends its messages with \r\n; a carriage return must not reach messages.
    expect(outputTail({ stdout: '', stderr: 'ssh: connect to host x: Connection refused\r\n\r\n' })).toEqual(['ssh: connect to host x: Connection refused']);
  });

  it('kills the whole process tree on timeout', async () => {
    const result = await new ZxExecutor().run({ argv: ['sh', '-c', 'sleep 30 & sleep 30; echo never'], timeoutMs: 200 });
    expect(result.timedOut).toBe(true);
    expect(result.stdout).toBe('');
    expect(result.durationMs).toBeLessThan(5000);
  });

  it('stops on abort and does not start after it', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const executor = new ZxExecutor();
    const result = await executor.run({ argv: ['sleep', '30'] }, { signal: controller.signal });
    expect(result.aborted).toBe(true);
    const after = await executor.run({ argv: ['sh', '-c', 'echo ran'] }, { signal: controller.signal });
    expect(after).toMatchObject({ aborted: true, stdout: '' });
  });

  // A tree whose members leave the command's session: `setsid` makes a new
  // session (and group), so a kill of the command's group misses them, and a
  // walk of the tree from the already killed shell finds nothing. They keep
  // the stdout pipe open, so a runner that waits for EOF waits for them.
  const escaping = [
    'echo $$',
    'sleep 300 & echo $!',
    'setsid sleep 302 & echo $!',
    `setsid bash -c 'sleep 303 & echo $!; setsid sleep 304 & echo $!; wait' &`,
    'wait',
  ].join('\n');

  for (const how of ['timeout', 'abort'] as const) {
    it(`on ${how}, returns in bounded time and leaves nothing it started running, setsid descendants included`, async () => {
      const controller = new AbortController();
      const pids: number[] = [];
      const started = Date.now();
      const result = await new ZxExecutor().run(
        { argv: ['bash', '-c', escaping], ...(how === 'timeout' ? { timeoutMs: 500 } : {}) },
        {
          signal: controller.signal,
          onLine: (line) => {
            pids.push(Number(line));
            leftovers.push(Number(line));
            if (how === 'abort' && pids.length === 5) controller.abort();
          },
        },
      );
      // the kill grace period (3 s) plus a second for the streams
      expect(Date.now() - started).toBeLessThan(8000);
      expect(result).toMatchObject(how === 'timeout' ? { timedOut: true, aborted: false } : { timedOut: false, aborted: true });
      expect(pids).toHaveLength(5);
      expect(pids.filter(running)).toEqual([]);
    }, 20_000);
  }

  it('kills what ignores SIGTERM after the grace period, and a daemonised descendant that still holds the output', async () => {
    const pids: number[] = [];
    const script = [
      `trap '' TERM`, // inherited: every process below ignores SIGTERM
      'echo $$',
      'sleep 307 & echo $!',
      'setsid sleep 308 & echo $!',
      // re-parented at once (its parent subshell exits), so no walk by parent finds it
      '( setsid sleep 309 & echo $! )',
      'wait',
    ].join('\n');
    const started = Date.now();
    const result = await new ZxExecutor().run(
      { argv: ['bash', '-c', script], timeoutMs: 500 },
      { onLine: (line) => (pids.push(Number(line)), leftovers.push(Number(line))) },
    );
    expect(Date.now() - started).toBeLessThan(8000);
    expect(result.timedOut).toBe(true);
    expect(pids).toHaveLength(4);
    expect(pids.filter(running)).toEqual([]);
  }, 20_000);

  it('quotes remote words for a POSIX shell', () => {
    expect(shellQuote('nix-store')).toBe('nix-store');
    expect(shellQuote("it's here")).toBe(`'it'\\''s here'`);
    expect(shellQuote('$(reboot)')).toBe(`'$(reboot)'`);
  });
});
