/**
 * The benchmark's handle on the test lab (test/lab/): the lock, up, a new
 * flake generation, down, and reading what the lab records (builds.log, the
 * cache's access log, the hosts' current system). Every process goes through
 * the project's runner (ZxExecutor), argv only.
 */
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandResult, CommandSpec, Executor, RunOptions } from '../lib/exec/types.ts';
import { outputTail, succeeded } from '../lib/exec/types.ts';

export const LAB_LOCK = '/run/avalanche-lab.lock';
/** up.sh writes it while a lab is up (see test/lab/common.sh) */
export const LAB_MARKER = '/run/avalanche-lab.dir';

export interface Knobs {
  readonly kernelSeconds: number;
  readonly hostSeconds: number;
  readonly activationSeconds: number;
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
  return Array.from({ length: count }, (_, i) => `opi0${i + 1}`);
}

export function hostAddress(host: string): string {
  return `10.213.77.${10 + Number(host.slice(3))}`;
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

  constructor(
    private readonly executor: Executor,
    private readonly repoRoot: string,
    readonly dir: string,
    private readonly signal: AbortSignal,
  ) {}

  get inventoryPath(): string {
    return join(this.dir, 'hosts.json');
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
      LAB_DIR: this.dir,
      LAB_HOSTS: hosts.join(' '),
      LAB_KERNEL_SECONDS: String(knobs.kernelSeconds),
      LAB_HOST_SECONDS: String(knobs.hostSeconds),
      LAB_ACTIVATION_SECONDS: String(knobs.activationSeconds),
    };
  }

  /** up.sh (which writes generation 1), then hawk's environment from env.sh. */
  async up(hosts: readonly string[], knobs: Knobs): Promise<number> {
    const result = await must(this.executor, 'test/lab/up.sh', { argv: ['bash', this.script('up.sh')], env: this.knobEnv(hosts, knobs), timeoutMs: 180_000 }, { signal: this.signal });
    this.hosts = hosts;
    this.knobs = knobs;
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

  /** Never aborted by the run's signal: the lab must come down also after Ctrl-C. */
  async down(): Promise<number> {
    const result = await this.executor.run({ argv: ['bash', this.script('down.sh')], env: { LAB_DIR: this.dir }, timeoutMs: 60_000 });
    this.hawkEnv = undefined;
    if (!succeeded(result)) throw new BenchError(`test/lab/down.sh failed (exit ${result.exitCode}): ${outputTail(result, 5).join(' | ')}`);
    return result.durationMs;
  }

  private lines(...parts: string[]): string[] {
    const path = join(this.dir, ...parts);
    return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
  }

  /** `<host> <derivation name> <generation>` per finished build (the lab's builds.log). */
  builds(): { host: string; name: string; generation: string }[] {
    return this.lines('builds.log').map((line) => {
      const [host = '', name = '', generation = ''] = line.split(' ');
      return { host, name, generation };
    });
  }

  /** Where the generation's kernel (`linux-<version>`) was built. */
  kernelBuilds(generation: string): string[] {
    return this.builds()
      .filter((b) => b.generation === generation && b.name.startsWith('linux-'))
      .map((b) => b.host);
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

  /** What the host runs (the lab's stand-in for /run/current-system). */
  currentSystem(host: string): string | undefined {
    const follow = (path: string): string | undefined => {
      try {
        const target = readlinkSync(path);
        return target.startsWith('/nix/store/') ? target : follow(join(path, '..', target));
      } catch {
        return undefined;
      }
    };
    return follow(join(this.dir, host, 'nix/var/lab/current-system'));
  }
}
