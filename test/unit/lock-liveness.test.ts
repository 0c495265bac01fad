import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { DeployLock, type LockHolder } from '../../lib/run/lock.ts';
import { fleetLock } from '../helpers/pipeline.ts';
import { RecordingExecutor } from '../helpers/recording-executor.ts';

/** /proc/<pid>/stat's state (field 3) and start time (field 22). */
function stat(pid: number): { state: string; startTime: number } {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0]!, startTime: Number(rest[19]) };
}
const bootId = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

/** A lock file on this machine that names `fields` as its holder, as the coordinator's script would answer. */
function lockedBy(fields: Partial<LockHolder>) {
  const holder = { id: 'x', user: 'ci', host: hostname(), pid: 42, startedAt: new Date().toISOString(), command: 'deploy-all --rolling', ...fields };
  let held = true;
  return new RecordingExecutor([(spec) => (spec.argv.join(' ').includes('set -C') && held ? ((held = false), { exitCode: 75, stdout: JSON.stringify(holder) }) : undefined)]);
}
const acquire = (executor: RecordingExecutor) => DeployLock.acquire({ ...fleetLock(), executor, command: 'deploy', forceUnlock: false });

const children: { kill: () => void }[] = [];
afterEach(() => children.splice(0).forEach((child) => child.kill()));

describe('deploy lock: is the holder alive (this machine, /proc)', () => {
  it('records its own start time and boot id', async () => {
    const lock = await acquire(new RecordingExecutor());
    expect(lock.holder).toMatchObject({ pid: process.pid, startTime: stat(process.pid).startTime, bootId: bootId() });
  });

  it('a holder that has exited but is not yet reaped (a zombie) is gone, though kill(pid, 0) still succeeds', async () => {
    // `sleep 0.1` exits at once; its parent exec'd `sleep 5`, which never waits for it: a zombie for 5 s.
    const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(parent);
    const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
    for (let i = 0; i < 100 && stat(pid).state !== 'Z'; i += 1) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(stat(pid).state).toBe('Z');
    expect(() => process.kill(pid, 0)).not.toThrow(); // what a kill(0) check would call alive
    const lock = await acquire(lockedBy({ pid, startTime: stat(pid).startTime, bootId: bootId() }));
    expect(lock.note).toBe(`took over a stale deploy lock (pid ${pid} on ${hostname()} has exited)`);
  });

  it('a pid that now belongs to another process (another start time) does not keep the lock', async () => {
    const lock = await acquire(lockedBy({ pid: process.pid, startTime: stat(process.pid).startTime - 1, bootId: bootId() }));
    expect(lock.note).toBe(`took over a stale deploy lock (pid ${process.pid} on ${hostname()} is another process now)`);
  });

  it('a holder from before the last boot is gone', async () => {
    const lock = await acquire(lockedBy({ pid: process.pid, startTime: stat(process.pid).startTime, bootId: '00000000-0000-0000-0000-000000000000' }));
    expect(lock.note).toBe(`took over a stale deploy lock (${hostname()} has rebooted since)`);
  });

  it('a live holder keeps it; one on another host is judged by age only', async () => {
    await expect(acquire(lockedBy({ pid: process.pid, startTime: stat(process.pid).startTime, bootId: bootId() }))).rejects.toThrow(`(pid ${process.pid})`);
    await expect(acquire(lockedBy({ pid: 1234567, host: 'elsewhere', startTime: 1, bootId: 'other' }))).rejects.toThrow('is held by ci@elsewhere (pid 1234567)');
    // an older lock without start time or boot id: the pid alone
    await expect(acquire(lockedBy({ pid: process.pid }))).rejects.toThrow(`(pid ${process.pid})`);
  });
});
