/**
 * The benchmark's handle on the test lab (test/lab/): the lock, up, a new
 * flake generation, down, and reading what the lab records (builds.log, the
 * cache's access log, the hosts' current system). Every process goes through
 * the project's runner (ZxExecutor), argv only.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandResult, CommandSpec, Executor, RunOptions } from '../lib/exec/types.ts';
import { outputTail, succeeded } from '../lib/exec/types.ts';
import { type BuildRecord, parseBuildsLog } from '../test/lab/builds-log.ts';

export type { BuildRecord } from '../test/lab/builds-log.ts';

export const LAB_LOCK = '/run/avalanche-lab.lock';
/** up.sh writes it while a lab is up (see test/lab/common.sh) */
export const LAB_MARKER = '/run/avalanche-lab.dir';

/**
 * up.sh and down.sh take the lab lock themselves unless told the caller holds
 * it: the benchmark does (bench/lock.ts) from before the lab comes up until
 * after it is down, so they would wait for it forever.
 */
const LOCK_HELD = { LAB_LOCK_HELD: '1' } as const;

export interface Knobs {
  readonly kernelSeconds: number;
  readonly hostSeconds: number;
  readonly activationSeconds: number;
  /** CPU seconds per evaluation of a host's toplevel (LAB_EVAL_SECONDS; 0: off) */
  readonly evalSeconds: number;
  /** MiB held per evaluation of a host's toplevel (LAB_EVAL_MIB; 0: off) */
  readonly evalMib: number;
}

export class BenchError extends Error {
  override readonly name = 'BenchError';
}

export class Interrupted extends Error {
  override readonly name = 'Interrupted';
  constructor() {
    super('interrupted');
  }
}

export function labHosts(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `opi${String(i + 1).padStart(2, "0")}`);
}

/** A lab host's address: hawk (this machine's root namespace), calypso, an opi. */
export function hostAddress(host: string): string {
  if (host === 'hawk') return '10.213.77.1';
  if (host === 'calypso') return '10.213.77.2';
  return `10.213.77.${10 + Number(host.slice(3))}`;
}

/** The lab's x86_64 target besides the opis (always up; in the fleet inventory only). */
export const X86_TARGET = 'calypso';


/** The Nix system of a lab "kernel" by its derivation name (test/lab/flake.sh): `linux-x86_64-<V>` or `linux-<V>` (aarch64). */
export function kernelSystem(name: string): 'x86_64-linux' | 'aarch64-linux' {
  return name.startsWith('linux-x86_64-') ? 'x86_64-linux' : 'aarch64-linux';
}

/** Runs a command and throws, with the tail of its output, unless it succeeded. */
export async function must(executor: Executor, what: string, spec: CommandSpec, options: RunOptions = {}): Promise<CommandResult> {
  const result = await executor.run(spec, options);
  if (result.aborted || options.signal?.aborted) throw new Interrupted();
  if (!succeeded(result)) {
    const status = result.timedOut ? `timed out after ${Math.round(result.durationMs / 1000)} s` : `exited with ${result.exitCode ?? result.signal}`;
    throw new BenchError([`${what}: ${status}`, `  $ ${spec.argv.join(' ')}`, ...outputTail(result, 20).map((l) => `  | ${l}`)].join('\n'));
  }
  return result;
}

export class Lab {
  /** the variables env.sh exports: act as hawk */
  private hawkEnv: Record<string, string> | undefined;
  hosts: readonly string[] = [];
  knobs: Knobs | undefined;
  /** memory of each container after the last up.sh (its own report, cgroup memory incl. page cache), MiB */
  upMemoryMiB: Record<string, number> = {};

  constructor(
    private readonly executor: Executor,
    private readonly repoRoot: string,
    readonly dir: string,
    private readonly signal: AbortSignal,
  ) {}

  get inventoryPath(): string {
    return join(this.dir, 'hosts.json');
  }

  /** The opis plus calypso, an x86_64-linux target; the orchestrator on hawk (up.sh writes it). */
  get fleetInventoryPath(): string {
    return join(this.dir, 'hosts-fleet.json');
  }

  get env(): Record<string, string> {
    if (!this.hawkEnv) throw new Error('the lab is not up');
    return this.hawkEnv;
  }

  private script(name: string): string {
    return join(this.repoRoot, 'test/lab', name);
  }

  private knobEnv(hosts: readonly string[], knobs: Knobs): Record<string, string> {
    return {
      ...LOCK_HELD,
      LAB_DIR: this.dir,
      LAB_HOSTS: hosts.join(' '),
      LAB_KERNEL_SECONDS: String(knobs.kernelSeconds),
      LAB_HOST_SECONDS: String(knobs.hostSeconds),
      LAB_ACTIVATION_SECONDS: String(knobs.activationSeconds),
      LAB_EVAL_SECONDS: String(knobs.evalSeconds),
      LAB_EVAL_MIB: String(knobs.evalMib),
    };
  }

  /** up.sh (which writes generation 1), then hawk's environment from env.sh. */
  async up(hosts: readonly string[], knobs: Knobs): Promise<number> {
    const result = await must(this.executor, 'test/lab/up.sh', { argv: ['bash', this.script('up.sh')], env: this.knobEnv(hosts, knobs), timeoutMs: 180_000 }, { signal: this.signal });
    this.hosts = hosts;
    this.knobs = knobs;
    // up.sh's last line: "… memory opi01=47MiB opi02=52MiB …;"
    this.upMemoryMiB = Object.fromEntries([...result.stderr.matchAll(/ ([a-z]+\d*)=(\d+)MiB/g)].map((m) => [m[1]!, Number(m[2])]));
    const envSh = join(this.dir, 'env.sh');
    // Sourced in a shell of its own; "$1" is the file, nothing is pasted into the script.
    const dump = await must(this.executor, 'reading env.sh', { argv: ['bash', '-c', '. "$1" && env -0', 'env.sh', envSh], timeoutMs: 10_000 });
    const all = Object.fromEntries(
      dump.stdout
        .split('\0')
        .filter((kv) => kv.includes('='))
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    this.hawkEnv = Object.fromEntries(['LAB_DIR', 'LAB_HOSTS', 'NIX_CONF_DIR', 'XDG_CACHE_HOME', 'PATH'].map((k) => [k, all[k] ?? '']));
    return result.durationMs;
  }

  /**
   * A new fleet revision: new kernel and toplevels, so nothing from an earlier
   * measurement can be reused. `kernelSeconds` overrides the lab's for this
   * generation only (flake.sh reads the knobs when it writes the flake).
   */
  async generation(name: string, kernelSeconds?: number): Promise<void> {
    const knobs = { ...this.knobs!, ...(kernelSeconds === undefined ? {} : { kernelSeconds }) };
    await must(
      this.executor,
      'test/lab/flake.sh',
      { argv: ['bash', this.script('flake.sh'), '--generation', name], env: this.knobEnv(this.hosts, knobs), timeoutMs: 30_000 },
      { signal: this.signal },
    );
  }

  /**
   * A copy of the current generation's flake where the opis can read it
   * ($LAB_DIR/shared, bind-mounted into every container at the same path;
   * $LAB_DIR/flake is hawk's and calypso's only), as a flake reference. The
   * flake has no inputs and its derivations do not refer to its own source,
   * so it evaluates to the same derivations as the original.
   */
  sharedFlake(name: string): string {
    const dir = join(this.dir, 'shared', `bench-flake-${name}`);
    mkdirSync(dir, { recursive: true });
    for (const file of ['flake.nix', 'flake.lock']) cpSync(join(this.dir, 'flake', file), join(dir, file));
    return `path:${dir}`;
  }

  /** Never aborted by the run's signal: the lab must come down also after Ctrl-C. */
  async down(): Promise<number> {
    const result = await this.executor.run({ argv: ['bash', this.script('down.sh')], env: { ...LOCK_HELD, LAB_DIR: this.dir }, timeoutMs: 60_000 });
    this.hawkEnv = undefined;
    if (!succeeded(result)) throw new BenchError(`test/lab/down.sh failed (exit ${result.exitCode}): ${outputTail(result, 5).join(' | ')}`);
    return result.durationMs;
  }

  private lines(...parts: string[]): string[] {
    const path = join(this.dir, ...parts);
    return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
  }

  /** Every finished build, oldest first (the lab's shared/builds.log). */
  builds(): BuildRecord[] {
    return parseBuildsLog(this.lines('shared', 'builds.log'));
  }

  /** The generation's kernel builds (`linux-<V>`, `linux-x86_64-<V>`: one per system), where and when. */
  kernelRecords(generation: string): BuildRecord[] {
    return this.builds().filter((b) => b.generation === generation && b.name.startsWith('linux-'));
  }

  /** Where the generation's kernels were built (every system's). */
  kernelBuilds(generation: string): string[] {
    return this.kernelRecords(generation).map((b) => b.host);
  }

  toplevelBuilds(generation: string): { host: string; name: string }[] {
    return this.builds()
      .filter((b) => b.generation === generation && b.name.startsWith('nixos-system-'))
      .map(({ host, name }) => ({ host, name }));
  }

  cacheRequests(): { client: string; method: string; path: string; status: string }[] {
    return this.lines('cache-access.log').map((line) => {
      const [, client = '', method = '', path = '', status = ''] = line.split(' ');
      return { client, method, path, status };
    });
  }

  /**
   * PID (here) of a lab host's systemd, PID 1 of its container: the first
   * process of `<its unified cgroup>/payload/init.scope` (test/lab/common.sh
   * lab_leader); undefined while it is down.
   */
  private leaderPid(host: string): number | undefined {
    const unified = this.lines(host, 'cgroups').find((l) => l.startsWith('unified '));
    if (!unified) return undefined;
    try {
      const pid = Number(readFileSync(join(unified.slice('unified '.length), 'payload/init.scope/cgroup.procs'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The host's failed systemd units (`systemctl --failed`), asked inside the
   * container through its PID 1's namespaces, as the lab inspects hosts (never
   * over ssh); [] when it is down or none failed.
   */
  async failedUnits(host: string): Promise<string[]> {
    const pid = this.leaderPid(host);
    if (pid === undefined) return [];
    const r = await this.executor.run({ argv: ['nsenter', '-t', String(pid), '-m', '-u', '-i', '-n', '-p', '--', 'systemctl', '--failed', '--no-legend', '--plain'], timeoutMs: 15_000 });
    return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  }

  /** What the host runs: its /run/current-system, on the container's tmpfs, read through /proc/<its PID 1>/root. */
  currentSystem(host: string): string | undefined {
    const pid = this.leaderPid(host);
    if (pid === undefined) return undefined;
    const follow = (path: string): string | undefined => {
      try {
        const target = readlinkSync(path);
        // The link may point at a profile link, which points at the store path.
        return target.startsWith('/nix/store/') ? target : follow(join(path, '..', target));
      } catch {
        return undefined;
      }
    };
    return follow(`/proc/${pid}/root/run/current-system`);
  }
}
