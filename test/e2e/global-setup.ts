/**
 * Brings the lab up once for all end-to-end projects (lab-hawk, lab-calypso)
 * and always tears it down. The lab is one per machine: this session holds
 * the lab lock (flock on /run/avalanche-lab.lock, through a child `flock`
 * process) from before up.sh until after down.sh. Where the machine cannot
 * host the lab (not root, no namespaces, no systemd-nspawn), the lab tests
 * skip — unless LAB_REQUIRED=1 (as in .ci/run), where that is an error.
 *
 * vitest runs every project's global setup first and every teardown last, in
 * one process: the first project brings the lab up, the others share it, the
 * last teardown takes it down.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

export interface LabInfo {
  readonly dir: string;
  readonly env: Record<string, string>;
}

declare module 'vitest' {
  export interface ProvidedContext {
    lab: LabInfo | null;
    labSkipReason: string;
  }
}

const labScripts = fileURLToPath(new URL('../lab/', import.meta.url));
const LOCK = '/run/avalanche-lab.lock';

function whyNoLab(): string | undefined {
  if (process.platform !== 'linux') return 'the lab needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'the lab needs root (network namespaces, containers, overlay mounts)';
  try {
    execFileSync('unshare', ['-n', 'true'], { stdio: 'ignore' });
  } catch {
    return 'this machine does not allow new network namespaces';
  }
  return undefined;
}

function sh(script: string, env: NodeJS.ProcessEnv): string {
  return execFileSync('bash', [`${labScripts}${script}`], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000 });
}

/** The variables env.sh exports, read by sourcing it in a shell of its own. */
function labEnvironment(dir: string): Record<string, string> {
  const out = execFileSync('bash', ['-c', `. "${dir}/env.sh" && env -0`], { encoding: 'utf8' });
  const env = Object.fromEntries(out.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const keep = ['LAB_DIR', 'LAB_HOSTS', 'NIX_CONF_DIR', 'NIX_REMOTE', 'XDG_CACHE_HOME', 'PATH'];
  return Object.fromEntries(keep.map((k) => [k, env[k] ?? '']));
}

/**
 * Holds the lab lock in a child `flock` until its stdin closes (release(), or
 * this process dying). Waits (bounded) for another session's lab to finish.
 */
async function holdLabLock(): Promise<{ release: () => void }> {
  const child: ChildProcess = spawn('flock', ['-w', '900', LOCK, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('locked')) resolve();
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`could not take the lab lock ${LOCK} (flock exited with ${code})`)));
  });
  return { release: () => child.stdin!.end() };
}

interface Shared {
  users: number;
  info: LabInfo | null;
  reason: string;
  down: () => void;
}
const SHARED = Symbol.for('avalanche-deploy.lab');
type WithShared = typeof globalThis & { [SHARED]?: Promise<Shared> };

async function bringUp(): Promise<Shared> {
  const reason = whyNoLab();
  if (reason) {
    if (process.env.LAB_REQUIRED === '1') throw new Error(`LAB_REQUIRED=1 but ${reason}`);
    return { users: 0, info: null, reason, down: () => undefined };
  }
  const lock = await holdLabLock();
  const env = { ...process.env, LAB_KERNEL_SECONDS: process.env.LAB_KERNEL_SECONDS ?? '1', LAB_LOCK_HELD: '1' };
  const down = () => {
    try {
      sh('down.sh', env);
    } catch (error) {
      console.error(`lab teardown failed: ${(error as Error).message}`);
    } finally {
      lock.release();
    }
  };
  try {
    sh('up.sh', env);
  } catch (error) {
    down();
    throw error;
  }
  const dir = process.env.LAB_DIR ?? '/var/lib/avalanche-lab';
  return { users: 0, info: { dir, env: labEnvironment(dir) }, reason: '', down };
}

export default async function setup(project: TestProject): Promise<() => void> {
  const g = globalThis as WithShared;
  g[SHARED] ??= bringUp();
  let shared: Shared;
  try {
    shared = await g[SHARED];
  } catch (error) {
    delete g[SHARED];
    throw error;
  }
  shared.users += 1;
  project.provide('lab', shared.info);
  project.provide('labSkipReason', shared.reason);
  return () => {
    shared.users -= 1;
    if (shared.users === 0) {
      delete g[SHARED];
      shared.down();
    }
  };
}
