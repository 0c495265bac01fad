/**
 * One deploy at a time per fleet: a lock file on the coordinator that says
 * who holds it, since when, and for what. A lock left by a dead run on this
 * machine, or older than any run may last, is taken over; --force-unlock
 * removes any lock.
 */
import { hostname, userInfo } from 'node:os';
import { StageError } from '../errors.ts';
import type { Executor } from '../exec/types.ts';
import { outputTail } from '../exec/types.ts';
import type { Inventory } from '../inventory/schema.ts';
import { onCoordinatorArgv } from '../ssh.ts';

export interface LockHolder {
  readonly id: string;
  readonly user: string;
  readonly host: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly command: string;
}

const HELD = 75;
/** The lock file cannot be created at all (a directory that is not writable): not "held". */
const CANNOT_CREATE = 73;
// noclobber makes the redirection an atomic create-if-absent; a file that
// exists is a holder, one that cannot be made is a permission problem.
const ACQUIRE = `
mkdir -p "$(dirname "$1")" || exit ${CANNOT_CREATE}
if err=$( ( set -C; printf '%s\\n' "$2" >"$1" ) 2>&1 ); then exit 0; fi
if [ -e "$1" ]; then cat "$1"; exit ${HELD}; fi
printf '%s\\n' "$err" >&2
exit ${CANNOT_CREATE}
`;
const REMOVE = `rm -f "$1"`;
const RELEASE = `grep -qF -- "$2" "$1" 2>/dev/null && rm -f "$1"; exit 0`;

export interface LockOptions {
  readonly inventory: Inventory;
  readonly executor: Executor;
  readonly onCoordinator: boolean;
  readonly command: string;
  readonly forceUnlock: boolean;
  readonly now?: () => number;
  readonly isAlive?: (pid: number) => boolean;
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

  private static argv(options: LockOptions, script: string, args: string[]): string[] {
    return onCoordinatorArgv(options.inventory, options.onCoordinator, ['sh', '-c', script, 'avalanche-lock', options.inventory.paths.lock, ...args]);
  }

  static async acquire(options: LockOptions): Promise<DeployLock> {
    const now = options.now ?? Date.now;
    const me: LockHolder = {
      id: `${hostname()}-${process.pid}-${now()}`,
      user: userInfo().username,
      host: hostname(),
      pid: process.pid,
      startedAt: new Date(now()).toISOString(),
      command: options.command,
    };
    let note: string | undefined;
    if (options.forceUnlock) {
      await DeployLock.run(options, REMOVE, []);
      note = 'removed the deploy lock (--force-unlock)';
    }
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const result = await DeployLock.run(options, ACQUIRE, [JSON.stringify(me)], [0, HELD]);
      if (result.exitCode === 0) return new DeployLock(options, me, note);
      const holder = parseHolder(result.stdout);
      const stale = holder ? staleReason(holder, options, now()) : 'unreadable lock file';
      if (!stale || attempt > 0) {
        throw new StageError(
          `deploy lock ${options.inventory.paths.lock} is held by ${holder ? describeHolder(holder) : 'an unknown run'}`,
          ['Wait for that deploy to finish; if it is dead, run again with --force-unlock.'],
        );
      }
      await DeployLock.run(options, REMOVE, []);
      note = `took over a stale deploy lock (${stale})`;
    }
    throw new StageError('could not take the deploy lock');
  }

  private static async run(options: LockOptions, script: string, args: string[], accepted = [0]) {
    const argv = DeployLock.argv(options, script, args);
    const result = await options.executor.run({ argv, timeoutMs: 30_000 });
    if (result.exitCode === CANNOT_CREATE) {
      const where = options.onCoordinator ? 'on this machine' : `on ${options.inventory.coordinator.name} as ${options.inventory.coordinator.user}`;
      throw new StageError(`cannot create the deploy lock ${options.inventory.paths.lock} ${where}: ${outputTail(result, 2).join(' / ')}`, [
        'paths.lock must be in a directory the deploying user can write (on the coordinator: coordinator.user); --force-unlock does not help here.',
      ]);
    }
    if (result.exitCode === null || !accepted.includes(result.exitCode)) {
      throw new StageError(`cannot reach the deploy lock ${options.inventory.paths.lock}: ${outputTail(result, 3).join(' / ') || `exit ${result.exitCode}`}`);
    }
    return result;
  }

  async release(): Promise<void> {
    await DeployLock.run(this.options, RELEASE, [this.holder.id]);
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(text) as LockHolder;
    return typeof holder.pid === 'number' && typeof holder.host === 'string' ? holder : undefined;
  } catch {
    return undefined;
  }
}

function staleReason(holder: LockHolder, options: LockOptions, now: number): string | undefined {
  const alive = options.isAlive ?? processAlive;
  if (holder.host === hostname() && !alive(holder.pid)) return `pid ${holder.pid} on ${holder.host} is gone`;
  const t = options.inventory.timeouts;
  const maxAgeMs = (t.buildMinutes + t.deployMinutes + 60) * 60_000;
  const age = now - Date.parse(holder.startedAt);
  if (age > maxAgeMs) return `older than any run may last (${Math.round(age / 60_000)} min)`;
  return undefined;
}
