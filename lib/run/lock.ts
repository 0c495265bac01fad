/**
 * One deploy at a time per fleet: a lock file on the coordinator that says
 * who holds it, since when, and for what. A lock left by a dead run on this
 * machine, or older than any run may last, is taken over; --force-unlock
 * removes any lock.
 */
import { existsSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { StageError } from '../errors.ts';
import { bootId, isRunningState, readProcStat } from '../exec/proc.ts';
import type { Executor } from '../exec/types.ts';
import { outputTail } from '../exec/types.ts';
import { fillCommand } from '../plan/placeholders.ts';
import type { DeployPlan, PlannedCommand, RollbackPlan } from '../plan/types.ts';
import { LOCK_CANNOT_CREATE, LOCK_HELD } from '../remote/lock-scripts.ts';

export interface LockHolder {
  readonly id: string;
  readonly user: string;
  readonly host: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly command: string;
  /**
   * The holder's start time, in clock ticks since boot (/proc/<pid>/stat
   * field 22): with the pid and the boot it names one process, so a reused
   * pid is not taken for the holder. Absent off Linux and in older locks.
   */
  readonly startTime?: number;
  /** /proc/sys/kernel/random/boot_id of the holder's machine when it took the lock. */
  readonly bootId?: string;
}

export interface LockOptions {
  /** the plan's lock commands, and where they run */
  readonly lock: RollbackPlan['lock'];
  readonly coordinator: DeployPlan['coordinator'];
  readonly executor: Executor;
  /** what this run is, for whoever finds the lock held */
  readonly command: string;
  readonly forceUnlock: boolean;
  readonly now?: () => number;
  /** For tests: whether a holder on this machine still runs (default {@link holderLiveness}). */
  readonly isAlive?: (holder: LockHolder) => boolean;
}

/**
 * Whether the process that took a lock on this machine still runs; if not,
 * why not (for the take-over note). Linux: alive only if /proc/<pid>/stat
 * exists, its state is not Z (exited, not yet reaped: kill(pid, 0) still
 * succeeds on it) or X, its start time equals the recorded one (else the pid
 * was reused) and the boot id is this boot's (start times count from boot).
 * Fields the lock lacks (older locks) are not compared. Without /proc (not
 * Linux) only kill(pid, 0) is asked (EPERM: someone else's process, alive).
 * Only meaningful for a holder whose `host` is this machine's hostname.
 */
export function holderLiveness(holder: LockHolder): { alive: true } | { alive: false; why: string } {
  const where = `pid ${holder.pid} on ${holder.host}`;
  const thisBoot = bootId();
  if (holder.bootId !== undefined && thisBoot !== undefined && holder.bootId !== thisBoot) return { alive: false, why: `${holder.host} has rebooted since` };
  if (!existsSync('/proc/self/stat')) return processAlive(holder.pid) ? { alive: true } : { alive: false, why: `${where} is gone` };
  const stat = readProcStat(holder.pid);
  if (!stat) return { alive: false, why: `${where} is gone` };
  if (!isRunningState(stat.state)) return { alive: false, why: `${where} has exited` };
  if (holder.startTime !== undefined && stat.startTime !== holder.startTime) return { alive: false, why: `${where} is another process now` };
  return { alive: true };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function describeHolder(holder: LockHolder): string {
  return `${holder.user}@${holder.host} (pid ${holder.pid}) since ${holder.startedAt}: ${holder.command}`;
}

export class DeployLock {
  private constructor(
    private readonly options: LockOptions,
    readonly holder: LockHolder,
    /** what happened to an earlier lock, for the output */
    readonly note: string | undefined,
  ) {}

  static async acquire(options: LockOptions): Promise<DeployLock> {
    const now = options.now ?? Date.now;
    const me: LockHolder = {
      id: `${hostname()}-${process.pid}-${now()}`,
      user: userInfo().username,
      host: hostname(),
      pid: process.pid,
      startedAt: new Date(now()).toISOString(),
      command: options.command,
      ...ownIdentity(),
    };
    let note: string | undefined;
    if (options.forceUnlock) {
      await DeployLock.run(options, options.lock.remove);
      note = 'removed the deploy lock (--force-unlock)';
    }
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const result = await DeployLock.run(options, options.lock.acquire, { 'lock-holder': holderRecord(me) }, [0, LOCK_HELD]);
      if (result.exitCode === 0) return new DeployLock(options, me, note);
      const holder = parseHolder(result.stdout);
      const stale = holder ? staleReason(holder, options, now()) : 'unreadable lock file';
      if (!stale || attempt > 0) {
        throw new StageError(
          `deploy lock ${options.lock.path} is held by ${holder ? describeHolder(holder) : 'an unknown run'}`,
          ['Wait for that deploy to finish; if it is dead, run again with --force-unlock.'],
        );
      }
      // Only the stale holder's lock: a run that took it over meanwhile keeps its own (RELEASE checks the id).
      await (holder?.id ? DeployLock.run(options, options.lock.release, { 'lock-holder-id': holder.id }) : DeployLock.run(options, options.lock.remove));
      note = `took over a stale deploy lock (${stale})`;
    }
    throw new StageError('could not take the deploy lock');
  }

  private static async run(options: LockOptions, command: PlannedCommand, values: Record<string, string> = {}, accepted = [0]) {
    const result = await options.executor.run(fillCommand(command, values));
    if (result.exitCode === LOCK_CANNOT_CREATE) {
      const { place, name } = options.coordinator;
      const where = place.kind === 'local' ? 'on this machine' : `on ${name} as ${place.host.user}`;
      throw new StageError(`cannot create the deploy lock ${options.lock.path} ${where}: ${outputTail(result, 2).join(' / ')}`, [
        'paths.lock must be in a directory the deploying user can write (on the coordinator: coordinator.user); --force-unlock does not help here.',
      ]);
    }
    if (result.exitCode === null || !accepted.includes(result.exitCode)) {
      throw new StageError(`cannot reach the deploy lock ${options.lock.path}: ${outputTail(result, 3).join(' / ') || `exit ${result.exitCode}`}`);
    }
    return result;
  }

  async release(): Promise<void> {
    await DeployLock.run(this.options, this.options.lock.release, { 'lock-holder-id': this.holder.id });
  }
}

/**
 * The holder as the lock file's line: JSON with `'` escaped (\u0027, still
 * JSON), since the record travels inside a single-quoted remote word.
 */
function holderRecord(holder: LockHolder): string {
  return JSON.stringify(holder).replace(/'/g, '\\u0027');
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(text) as LockHolder;
    if (typeof holder.pid !== 'number' || typeof holder.host !== 'string') return undefined;
    // fields of the wrong type are ignored, as if the lock were older
    const { startTime, bootId: boot, ...rest } = holder;
    return { ...rest, ...(typeof startTime === 'number' ? { startTime } : {}), ...(typeof boot === 'string' ? { bootId: boot } : {}) };
  } catch {
    return undefined;
  }
}

/** This process's start time and the boot id, where /proc has them. */
function ownIdentity(): Pick<LockHolder, 'startTime' | 'bootId'> {
  const startTime = readProcStat(process.pid)?.startTime;
  const boot = bootId();
  return { ...(startTime !== undefined ? { startTime } : {}), ...(boot !== undefined ? { bootId: boot } : {}) };
}

function staleReason(holder: LockHolder, options: LockOptions, now: number): string | undefined {
  if (holder.host === hostname()) {
    if (options.isAlive) {
      if (!options.isAlive(holder)) return `pid ${holder.pid} on ${holder.host} is gone`;
    } else {
      const liveness = holderLiveness(holder);
      if (!liveness.alive) return liveness.why;
    }
  }
  const age = now - Date.parse(holder.startedAt);
  if (age > options.lock.maxAgeMs) return `older than any run may last (${Math.round(age / 60_000)} min)`;
  return undefined;
}
