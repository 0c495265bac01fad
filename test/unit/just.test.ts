import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** The just that `npm ci` installs (rust-just), on the project's justfile, as `npx just …` runs it. */
function just(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node_modules/.bin/just', ['--justfile', 'justfile', ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
    );
  });
}

// each recipe starts tsx (~2 s, more on a busy machine)
describe('just recipes', { timeout: 60_000 }, () => {
  it('`just nix deploy` without a host is the script\'s usage error, exit 2, not just\'s', async () => {
    const result = await just('nix', 'deploy');
    expect(result.stderr).toContain('error: name at least one host');
    expect(result.stderr).not.toContain('positional arguments');
    expect(result.status).toBe(2);
  });

  it('`just nix plan` without a host likewise', async () => {
    const result = await just('nix', 'plan');
    expect(result.stderr).toContain('error: name at least one host');
    expect(result.status).toBe(2);
  });

  it.each([
    ['deploy', 'scripts/deploy.ts'],
    ['deploy-all', 'scripts/deploy-all.ts'],
    ['plan', 'scripts/deploy.ts'],
    ['doctor', 'scripts/doctor.ts'],
  ])('`just nix %s --help` does not echo its command line', async (recipe, script) => {
    const result = await just('nix', recipe, '--help');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/--help/);
    expect(result.stderr).not.toContain(`tsx ${script}`);
  });

  it('every recipe, top-level and in nix.just, is quiet (their effect: tsc, npm ci, are too slow to run here)', async () => {
    const dump = JSON.parse((await just('--dump', '--dump-format', 'json')).stdout) as { settings: { quiet: boolean }; modules: Record<string, { settings: { quiet: boolean } }> };
    expect(dump.settings.quiet).toBe(true);
    expect(dump.modules.nix!.settings.quiet).toBe(true);
  });

  it('`just` alone lists the recipes, also where `just` is not on PATH', async () => {
    const result = await just();
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/nix:\n\s+deploy \*args/);
    expect(result.stderr).toBe('');
  });
});
