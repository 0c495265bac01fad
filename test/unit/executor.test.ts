import { describe, expect, it } from 'vitest';
import { outputTail, succeeded } from '../../lib/exec/types.ts';
import { ZxExecutor } from '../../lib/exec/zx-executor.ts';
import { shellQuote } from '../../lib/ssh.ts';

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

  it('quotes remote words for a POSIX shell', () => {
    expect(shellQuote('nix-store')).toBe('nix-store');
    expect(shellQuote("it's here")).toBe(`'it'\\''s here'`);
    expect(shellQuote('$(reboot)')).toBe(`'$(reboot)'`);
  });
});
