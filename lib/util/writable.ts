/** Can this process write where it will write at the end of a run? Asked at the start, not after the build. */
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';

/**
 * Makes `dir` (with parents) and checks this user may create files in it.
 * Returns why not (e.g. "EACCES: permission denied, mkdir '/var/x'"), or
 * undefined when it is writable. Bounded by `timeoutMs`: Node 20's recursive
 * mkdir never settles for some paths (e.g. under /proc), which must not hang
 * the deploy before it starts.
 */
export async function whyNotWritable(dir: string, timeoutMs = 5_000): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const check = (async () => {
    try {
      await mkdir(dir, { recursive: true });
      await access(dir, constants.W_OK | constants.X_OK);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  })();
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`making it did not finish within ${timeoutMs / 1000} s`), timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([check, late]);
  } finally {
    clearTimeout(timer);
  }
}
