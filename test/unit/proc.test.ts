import { describe, expect, it } from 'vitest';
import { descendantsOf, isRunningState, parseProcStat, readProcStat, type ProcStat } from '../../lib/exec/proc.ts';

describe('/proc', () => {
  it('parses a stat line whose command name has spaces and parentheses', () => {
    const line = '4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0\n';
    expect(parseProcStat(line)).toEqual({ pid: 4242, state: 'S', ppid: 1, pgid: 4242, sid: 4242, startTime: 987654 });
    expect(parseProcStat('garbage')).toBeUndefined();
    expect(isRunningState('Z')).toBe(false);
    expect(isRunningState('S')).toBe(true);
  });

  it('finds descendants by parent pid, across sessions, not the roots or others', () => {
    const stat = (pid: number, ppid: number, sid = 10): ProcStat => ({ pid, ppid, pgid: sid, sid, state: 'S', startTime: pid });
    const processes = [stat(10, 1), stat(11, 10), stat(12, 11, 12), stat(13, 12, 13), stat(20, 1), stat(21, 20)];
    expect(descendantsOf([10], processes).map((p) => p.pid).sort()).toEqual([11, 12, 13]);
  });

  it('reads this process', () => {
    expect(readProcStat(process.pid)).toMatchObject({ pid: process.pid, ppid: process.ppid });
  });
});
