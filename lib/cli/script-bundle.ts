/**
 * Each script's command as one prebuilt ES module, kept fresh in a cache,
 * so that its own process (lib/cli/own-process.ts) starts with plain Node
 * instead of tsx's loader again.
 *
 * Why: tsx compiles and resolves every module through its loader hooks.
 * Measured here (Node 20, 2 CPUs): `deploy-all --help` in its own process
 * took 1.3–1.4 s under the loader and 0.55–0.65 s from the bundle; a
 * deploy pays it once per run, on its critical path.
 *
 * The bundle is made with esbuild (what tsx itself compiles with), the
 * packages it imports inside it (zod, zx, listr2…): Node then loads one file
 * instead of resolving and compiling some hundreds (`deploy-all --help` in
 * its own process: 0.16–0.25 s instead of 0.25–0.34 s, Node 20, 2 CPUs).
 * esbuild alone stays outside: it finds its binary beside its own files, and
 * only the launcher, which makes bundles, loads it. It is reused while every
 * file it was made from, packages' included, has the size and mtime it had
 * then (listed beside it from esbuild's metafile): `npm ci` or an update
 * makes it again. Anything that goes wrong here
 * (a cache that cannot be written, a source esbuild rejects) returns no
 * bundle: the caller then runs the script under tsx as before, which says
 * what is wrong with a source.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository: this file is lib/cli/script-bundle.ts. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Where the bundles live: inside node_modules, so that Node resolves esbuild from there; `npm ci` starts it afresh. */
export const BUNDLE_CACHE = join(ROOT, 'node_modules/.cache/avalanche-deploy');

/** Bump when what a bundle is made from or how changes beyond its sources. */
const FORMAT = 2;

interface Manifest {
  readonly format: number;
  /** every source file the bundle holds, relative to the repository: [path, size in bytes, mtime in ms] */
  readonly inputs: readonly (readonly [string, number, number])[];
}

/**
 * The path of an up-to-date bundle of `script` (an absolute path to a
 * scripts/*.ts file), made now if there is none or a source changed since;
 * undefined when none can be had (see the module's comment). Concurrent
 * callers each write their own temporary files and rename them into place.
 */
export async function freshBundle(script: string, options: { readonly cacheDir?: string; readonly root?: string } = {}): Promise<string | undefined> {
  const cacheDir = options.cacheDir ?? BUNDLE_CACHE;
  const root = options.root ?? ROOT;
  // Named by the checkout too: worktrees sharing one node_modules keep a bundle each.
  const name = `${basename(script).replace(/\.[cm]?ts$/, '')}-${createHash('sha256').update(root).digest('hex').slice(0, 8)}`;
  const bundle = join(cacheDir, `${name}.mjs`);
  const manifestPath = join(cacheDir, `${name}.inputs.json`);
  try {
    if (await isFresh(bundle, manifestPath, root)) return bundle;
    await mkdir(cacheDir, { recursive: true });
    const { build } = await import('esbuild');
    const temporary = `${bundle}.${process.pid}.tmp`;
    // A source saved while esbuild read it would be listed with its new mtime beside the old content.
    const startedMs = Date.now();
    const made = await build({
      entryPoints: [script],
      absWorkingDir: root,
      outfile: temporary,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: ['esbuild'],
      // The CommonJS packages inside (zx, picomatch) require Node's builtins: an ES module has no `require`.
      banner: { js: "import { createRequire as __avalancheCreateRequire } from 'node:module';\nconst require = __avalancheCreateRequire(import.meta.url);" },
      sourcemap: 'linked',
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = await Promise.all(Object.keys(made.metafile.inputs).map(async (path) => {
      const { size, mtimeMs } = await stat(join(root, path));
      return [path, size, mtimeMs] as const;
    }));
    const manifest: Manifest = { format: FORMAT, inputs };
    const changedMeanwhile = inputs.some(([, , mtimeMs]) => mtimeMs >= startedMs);
    await rename(`${temporary}.map`, `${bundle}.map`);
    // The sourcemap link names the temporary file: point it at the bundle's own map.
    const code = (await readFile(temporary, 'utf8')).replace(/\/\/# sourceMappingURL=\S+\s*$/, `//# sourceMappingURL=${basename(bundle)}.map\n`);
    await writeFile(temporary, code);
    await rename(temporary, bundle);
    // Without a manifest the next run makes it again: used this once, not trusted later.
    if (changedMeanwhile) await rm(manifestPath, { force: true });
    else {
      await writeFile(`${manifestPath}.${process.pid}.tmp`, JSON.stringify(manifest));
      await rename(`${manifestPath}.${process.pid}.tmp`, manifestPath);
    }
    return bundle;
  } catch {
    for (const leftover of [`${bundle}.${process.pid}.tmp`, `${bundle}.${process.pid}.tmp.map`, `${manifestPath}.${process.pid}.tmp`]) {
      await rm(leftover, { force: true }).catch(() => undefined);
    }
    return undefined;
  }
}

async function isFresh(bundle: string, manifestPath: string, root: string): Promise<boolean> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
    await stat(bundle);
  } catch {
    return false;
  }
  if (manifest.format !== FORMAT || !Array.isArray(manifest.inputs) || manifest.inputs.length === 0) return false;
  const same = await Promise.all(manifest.inputs.map(async ([path, size, mtimeMs]) => {
    try {
      const now = await stat(join(root, path));
      return now.size === size && now.mtimeMs === mtimeMs;
    } catch {
      return false;
    }
  }));
  return same.every(Boolean);
}
