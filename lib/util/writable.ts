/** Can this process write where it will write at the end of a run? Asked at the start, not after the build. */
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';

/**
 * Makes `dir` (with parents) and checks this user may create files in it.
 * Returns why not (e.g. "EACCES: permission denied, mkdir '/var/x'"), or
 * undefined when it is writable.
 */
export async function whyNotWritable(dir: string): Promise<string | undefined> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK | constants.X_OK);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
