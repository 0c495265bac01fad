/** Writes `<dir>/<name>.json` through a temporary file and a rename, so a crash never leaves half a file. */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function writeJsonAtomically(dir: string, name: string, value: unknown): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${name}.json`);
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(value, null, 2)}\n`);
  await rename(temporary, path);
  return path;
}
