/**
 * The scripts' prebuilt bundles (lib/cli/script-bundle.ts): made once, reused
 * while their sources are unchanged, made again when one changes, and none
 * (the caller falls back to tsx) when a source does not compile or the cache
 * cannot be written.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { withoutTsxLoader } from '../../lib/cli/own-process.ts';
import { freshBundle } from '../../lib/cli/script-bundle.ts';

let root: string | undefined;
afterEach(async () => {
  if (root) await rm(root, { recursive: true, force: true });
  root = undefined;
});

/** A repository of one script importing one module that prints `said`. */
async function repository(said: string): Promise<{ root: string; script: string; cacheDir: string }> {
  root = await mkdtemp(join(tmpdir(), 'script-bundle-'));
  await mkdir(join(root, 'scripts'));
  await mkdir(join(root, 'lib'));
  await writeFile(join(root, 'lib/say.ts'), `export const said: string = ${JSON.stringify(said)};\n`);
  await writeFile(join(root, 'scripts/hello.ts'), `const { said } = await import('../lib/say.ts');\nconsole.log(said, process.argv.slice(2).join(' '));\n`);
  return { root, script: join(root, 'scripts/hello.ts'), cacheDir: join(root, 'cache') };
}

const runs = (bundle: string, ...args: string[]) => execFileSync(process.execPath, [bundle, ...args], { encoding: 'utf8' }).trim();

describe('script bundles', () => {
  it('makes a bundle that runs with plain node, and reuses it while no source changed', async () => {
    const repo = await repository('one');
    const bundle = await freshBundle(repo.script, repo);
    expect(bundle).toMatch(new RegExp(`^${repo.cacheDir}/hello-[0-9a-f]{8}\\.mjs$`));
    expect(runs(bundle!, 'a', 'b')).toBe('one a b');
    const made = (await stat(bundle!)).mtimeMs;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await freshBundle(repo.script, repo)).toBe(bundle);
    expect((await stat(bundle!)).mtimeMs).toBe(made);
  });

  it('makes it again when a module it holds changed', async () => {
    const repo = await repository('one');
    const bundle = await freshBundle(repo.script, repo);
    await writeFile(join(repo.root, 'lib/say.ts'), 'export const said: string = "two, longer";\n');
    expect(await freshBundle(repo.script, repo)).toBe(bundle);
    expect(runs(bundle!)).toBe('two, longer');
  });

  it('holds the packages it imports, CommonJS ones requiring Node\'s builtins, and is made again when a package changes', async () => {
    const repo = await repository('one');
    // A CommonJS package, as zx's core is: it requires a builtin at load.
    const pkg = join(repo.root, 'node_modules/shout');
    await mkdir(pkg, { recursive: true });
    await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: 'shout', version: '1.0.0', main: 'index.js' }));
    await writeFile(join(pkg, 'index.js'), "const { basename } = require('node:path');\nexports.shout = (s) => basename('/x/' + s).toUpperCase();\n");
    await writeFile(join(repo.root, 'scripts/hello.ts'), "import { shout } from 'shout';\nconsole.log(shout('one'));\n");
    const bundle = await freshBundle(repo.script, repo);
    expect(bundle).toBeDefined();
    // Inside the bundle: it runs from elsewhere, where no node_modules can be found.
    const away = await mkdtemp(join(tmpdir(), 'script-bundle-away-'));
    try {
      const elsewhere = join(away, 'hello.mjs');
      execFileSync('cp', [bundle!, elsewhere]);
      expect(runs(elsewhere)).toBe('ONE');
    } finally {
      await rm(away, { recursive: true, force: true });
    }
    await writeFile(join(pkg, 'index.js'), "const { basename } = require('node:path');\nexports.shout = (s) => basename('/x/' + s) + '!';\n");
    expect(await freshBundle(repo.script, repo)).toBe(bundle);
    expect(runs(bundle!)).toBe('one!');
  });

  it('gives none when a source does not compile or the cache cannot be written', async () => {
    const repo = await repository('one');
    await writeFile(join(repo.root, 'lib/say.ts'), 'export const said: string = ;\n');
    expect(await freshBundle(repo.script, repo)).toBeUndefined();
    await writeFile(join(repo.root, 'lib/say.ts'), 'export const said = "fine";\n');
    expect(await freshBundle(repo.script, repo)).toBeDefined();
    await writeFile(join(repo.root, 'blocked'), 'a file where the cache directory would be');
    expect(await freshBundle(repo.script, { ...repo, cacheDir: join(repo.root, 'blocked/cache') })).toBeUndefined();
  });

  it("keeps the user's Node flags for the bundle's process, not tsx's loader", () => {
    const tsx = ['--require', '/r/node_modules/tsx/dist/preflight.cjs', '--import', 'file:///r/node_modules/tsx/dist/loader.mjs'];
    expect(withoutTsxLoader([...tsx, '--max-old-space-size=4096', '--import', 'file:///r/other.mjs', '--import=file:///r/node_modules/tsx/dist/loader.mjs'])).toEqual([
      '--max-old-space-size=4096', '--import', 'file:///r/other.mjs',
    ]);
  });
});
