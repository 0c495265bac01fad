/**
 * Brings the lab up once for all end-to-end files and always tears it down.
 * Where the machine cannot host it (not root, no namespaces), the lab tests
 * skip — unless LAB_REQUIRED=1 (as in .ci/run), where that is an error.
 */
import { execFileSync } from 'node:child_process';
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

function whyNoLab(): string | undefined {
  if (process.platform !== 'linux') return 'the lab needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'the lab needs root (network namespaces, bind mounts)';
  try {
    execFileSync('unshare', ['-n', 'true'], { stdio: 'ignore' });
  } catch {
    return 'this machine does not allow new network namespaces';
  }
  return undefined;
}

function sh(script: string, env: NodeJS.ProcessEnv): string {
  return execFileSync('bash', [`${labScripts}${script}`], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 });
}

/** The variables env.sh exports, read by sourcing it in a shell of its own. */
function labEnvironment(dir: string): Record<string, string> {
  const out = execFileSync('bash', ['-c', `. "${dir}/env.sh" && env -0`], { encoding: 'utf8' });
  const env = Object.fromEntries(out.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const keep = ['LAB_DIR', 'LAB_HOSTS', 'NIX_CONF_DIR', 'XDG_CACHE_HOME', 'PATH'];
  return Object.fromEntries(keep.map((k) => [k, env[k] ?? '']));
}

export default function setup(project: TestProject): (() => void) | undefined {
  const reason = whyNoLab();
  if (reason) {
    if (process.env.LAB_REQUIRED === '1') throw new Error(`LAB_REQUIRED=1 but ${reason}`);
    project.provide('lab', null);
    project.provide('labSkipReason', reason);
    return undefined;
  }
  const env = { ...process.env, LAB_KERNEL_SECONDS: process.env.LAB_KERNEL_SECONDS ?? '3' };
  const down = () => {
    try {
      sh('down.sh', env);
    } catch (error) {
      console.error(`lab teardown failed: ${(error as Error).message}`);
    }
  };
  try {
    sh('up.sh', env);
  } catch (error) {
    down();
    throw error;
  }
  const dir = process.env.LAB_DIR ?? '/var/lib/avalanche-lab';
  project.provide('lab', { dir, env: labEnvironment(dir) });
  project.provide('labSkipReason', '');
  return down;
}
