/**
 * A cgroup per measured strategy, so the coordinator's share of a run — the
 * orchestrator and every process it starts on this machine (nix evaluators,
 * ssh, nixos-rebuild, tsx) — can be read after it: CPU time from cgroup v2's
 * `cpu.stat` (kept by the kernel in every cgroup, controllers or not) and the
 * peak memory from the memory controller, cgroup v1's
 * `memory.max_usage_in_bytes` (this machine's hybrid hierarchy has it there;
 * page cache the strategy caused counts, as the kernel charges it) or v2's
 * `memory.peak` where the controller is on v2. Created below this process's
 * own cgroups, in `…/avalanche-lab/bench-<name>` as the lab's containers are
 * (test/lab/boot.sh). Work done by daemons (hawk's nix-daemon: builds, store
 * writes) is not the strategy's process tree and is not counted.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

export interface CoordinatorUsage {
  /** user + system CPU time of every process that ran in the cgroup, ms */
  readonly cpuMs: number;
  readonly userMs: number;
  readonly systemMs: number;
  /** the cgroup's peak memory use, bytes (undefined without a memory controller) */
  readonly peakMemoryBytes: number | undefined;
}

/** Mount point of a cgroup hierarchy: cgroup2, or the v1 hierarchy with this controller. */
function mountOf(type: 'cgroup2' | 'cgroup', option?: string): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 0 || fields[dash + 1] !== type) continue;
    if (option && !(fields[dash + 3] ?? '').split(',').includes(option)) continue;
    return fields[4];
  }
  return undefined;
}

/** This process's cgroup path in the unified hierarchy ("0::/x") or a v1 controller's ("4:memory:/x"). */
function ownPath(controller: '' | 'memory'): string | undefined {
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, controllers, path] = line.match(/^\d+:([^:]*):(.*)$/) ?? [];
    if (controllers !== undefined && controllers.split(',').includes(controller) && path !== undefined) return path;
    if (controller === '' && controllers === '' && path !== undefined) return path;
  }
  return undefined;
}

export class StrategyCgroup {
  private constructor(
    /** cgroup v2 directory (cpu.stat) */
    readonly unified: string,
    /** where memory is accounted: a v1 memory directory, or the unified one when v2 has the controller */
    readonly memory: string | undefined,
  ) {}

  /** Creates `…/avalanche-lab/bench-<name>` in the unified hierarchy and, when it is a separate one, the v1 memory hierarchy. */
  static create(name: string): StrategyCgroup {
    const v2 = mountOf('cgroup2');
    const v2Path = ownPath('');
    if (!v2 || v2Path === undefined) throw new Error('no cgroup v2 hierarchy: cannot measure the coordinator');
    const unified = join(v2, v2Path, 'avalanche-lab', `bench-${name}`);
    mkdirSync(unified, { recursive: true });
    let memory: string | undefined;
    const v1 = mountOf('cgroup', 'memory');
    const v1Path = ownPath('memory');
    if (v1 && v1Path !== undefined) {
      memory = join(v1, v1Path, 'avalanche-lab', `bench-${name}`);
      mkdirSync(memory, { recursive: true });
    } else if (existsSync(join(unified, 'memory.peak'))) {
      memory = unified;
    }
    return new StrategyCgroup(unified, memory);
  }

  /**
   * argv that moves itself into the cgroup(s), then execs `argv`: a fixed sh
   * script, the files and the command as its arguments (nothing pasted).
   */
  wrap(argv: readonly string[]): string[] {
    const procs = [this.unified, ...(this.memory && this.memory !== this.unified ? [this.memory] : [])].map((d) => join(d, 'cgroup.procs'));
    return ['sh', '-c', 'while [ "$1" != -- ]; do echo $$ >"$1" || exit 125; shift; done; shift; exec "$@"', 'bench-cgroup', ...procs, '--', ...argv];
  }

  usage(): CoordinatorUsage {
    const stat = Object.fromEntries(
      readFileSync(join(this.unified, 'cpu.stat'), 'utf8')
        .split('\n')
        .map((l) => l.split(' '))
        .filter((kv) => kv.length === 2)
        .map(([k, v]) => [k, Number(v)]),
    ) as Record<string, number>;
    let peakMemoryBytes: number | undefined;
    if (this.memory) {
      const file = this.memory === this.unified ? 'memory.peak' : 'memory.max_usage_in_bytes';
      peakMemoryBytes = Number(readFileSync(join(this.memory, file), 'utf8').trim());
    }
    return { cpuMs: (stat.usage_usec ?? 0) / 1000, userMs: (stat.user_usec ?? 0) / 1000, systemMs: (stat.system_usec ?? 0) / 1000, peakMemoryBytes };
  }

  /** PIDs still in the cgroup (a strategy's leftovers, e.g. an ssh master it left persisting). */
  pids(): number[] {
    const dirs = [this.unified, ...(this.memory && this.memory !== this.unified ? [this.memory] : [])];
    return [...new Set(dirs.flatMap((d) => readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number)))];
  }

  /**
   * Removes the cgroup(s), after killing what the strategy left in them (only
   * processes it started are there), and `avalanche-lab/` when it is empty
   * (test/lab/down.sh removes it otherwise).
   */
  async remove(): Promise<void> {
    for (let i = 0; i < 20 && this.pids().length; i++) {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, i < 10 ? 'SIGTERM' : 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const dir of new Set([this.unified, this.memory].filter((d): d is string => d !== undefined))) {
      try {
        rmdirSync(dir);
        // …/avalanche-lab itself goes when nothing else is in it (a cgroup with children refuses).
        rmdirSync(join(dir, '..'));
      } catch {
        // busy or not empty: down.sh removes the lab's cgroups
      }
    }
  }
}
