/**
 * What Linux's /proc says about processes: their state, parent, group and
 * start time. Used to kill a command's whole tree (descendants that started
 * their own session included) and to tell whether a lock's holder still runs.
 * Everything here is Linux-only (proc(5)); elsewhere the functions return
 * undefined or nothing, and callers fall back to what they did before.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';

export interface ProcStat {
  readonly pid: number;
  /** proc(5) field 3: R running, S sleeping, D disk sleep, Z zombie, X dead, T stopped, … */
  readonly state: string;
  /** field 4 */
  readonly ppid: number;
  /** field 5: the process group */
  readonly pgid: number;
  /** field 6: the session */
  readonly sid: number;
  /**
   * field 22: when the process started, in clock ticks since boot. With the
   * pid it names one process for as long as the machine runs: a reused pid
   * has a later start time.
   */
  readonly startTime: number;
}

/**
 * Parses the text of /proc/<pid>/stat. The command name (field 2) is in
 * parentheses and may itself contain spaces and parentheses, so the fields
 * are counted from the last ')'. Returns undefined for text that is not a
 * stat line.
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  // after ')': field 3 (state) is index 0, so field n is index n - 3
  const rest = text.slice(close + 2).trim().split(/\s+/);
  const field = (n: number) => Number(rest[n - 3]);
  const stat = { pid, state: rest[0] ?? '', ppid: field(4), pgid: field(5), sid: field(6), startTime: field(22) };
  return Number.isInteger(pid) && stat.state !== '' && [stat.ppid, stat.pgid, stat.sid, stat.startTime].every(Number.isInteger) ? stat : undefined;
}

/**
 * /proc/<pid>/stat of one process, or undefined when there is no such process
 * (or no /proc: not Linux). Synchronous: one small read.
 */
export function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** A zombie (Z) has exited and waits to be reaped; X is dead. Neither runs any more. */
export function isRunningState(state: string): boolean {
  return state !== 'Z' && state !== 'X';
}

/**
 * Every process on the machine, from /proc (processes that exit while it is
 * read are skipped); empty where there is no /proc. Read without blocking
 * the event loop: a stopping run must still answer signals at once (tsx's
 * CLI SIGKILLs a child that does not acknowledge a relayed SIGINT within 30 ms).
 */
export async function listProcesses(): Promise<ProcStat[]> {
  let names: string[];
  try {
    names = await readdir('/proc');
  } catch {
    return [];
  }
  const stats = await Promise.all(
    names.filter((name) => /^\d+$/.test(name)).map((name) => readFile(`/proc/${name}/stat`, 'utf8').then(parseProcStat, () => undefined)),
  );
  return stats.filter((stat): stat is ProcStat => stat !== undefined);
}

/**
 * The descendants of the given processes (children, their children, …), by
 * parent pid, in one snapshot of /proc: the roots themselves are not
 * included. A process whose parent has already exited has been re-parented
 * (to init or a subreaper) and cannot be found this way, so take the snapshot
 * before killing anything. Descendants that called setsid(2) are found like
 * any other: the parent link does not change with the session.
 */
export function descendantsOf(roots: readonly number[], processes: readonly ProcStat[]): ProcStat[] {
  const children = new Map<number, ProcStat[]>();
  for (const stat of processes) {
    const siblings = children.get(stat.ppid);
    if (siblings) siblings.push(stat);
    else children.set(stat.ppid, [stat]);
  }
  const found = new Map<number, ProcStat>();
  const queue = [...roots];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      if (found.has(child.pid) || roots.includes(child.pid)) continue;
      found.set(child.pid, child);
      queue.push(child.pid);
    }
  }
  return [...found.values()];
}

/**
 * This boot's id (/proc/sys/kernel/random/boot_id), or undefined where the
 * kernel does not provide it. Start times count from boot, so they name a
 * process only together with the boot.
 */
export function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * What a process's file descriptor refers to (readlink of /proc/<pid>/fd/<fd>,
 * e.g. `socket:[105390]` — Node gives a child's stdio sockets, not pipes), or
 * undefined when it cannot be read.
 */
export function fdTarget(pid: number, fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/**
 * The pids of the processes that have any of `targets` (fdTarget values) open,
 * from /proc/<pid>/fd of every process this user may read (others' are
 * skipped). This finds a command's descendants that detached and were
 * re-parented before anyone looked, as long as they still hold its output.
 * Reads without blocking the event loop (see {@link listProcesses}).
 */
export async function processesHoldingAsync(targets: ReadonlySet<string>, pids: readonly number[]): Promise<number[]> {
  if (targets.size === 0) return [];
  const holding = await Promise.all(
    pids.map(async (pid) => {
      const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
      const links = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
      return links.some((link) => targets.has(link)) ? pid : undefined;
    }),
  );
  return holding.filter((pid): pid is number => pid !== undefined);
}

