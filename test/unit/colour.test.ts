import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { colourLevel, colours } from '../../lib/cli/colour.ts';
import type { Io } from '../../lib/cli/io.ts';
import { runDeployCli } from '../../lib/cli/deploy.ts';
import { repoRoot, fleetInventoryPath } from '../helpers/fixtures.ts';

const SGR = /\u001b\[[0-9;]*m/;

describe('colour from the environment (NO_COLOR, FORCE_COLOR, a terminal)', () => {
  it.each([
    [{}, true, 1],
    [{ TERM: 'xterm-256color' }, true, 2],
    [{ COLORTERM: 'truecolor' }, true, 3],
    [{ TERM: 'dumb' }, true, 0],
    [{}, false, 0],
    [{ NO_COLOR: '1' }, true, 0],
    [{ NO_COLOR: 'yes', TERM: 'xterm-256color' }, true, 0],
    [{ NO_COLOR: '' }, true, 1], // empty: not set (no-color.org)
    [{ FORCE_COLOR: '1' }, false, 1],
    [{ FORCE_COLOR: '' }, false, 0], // empty: not set
    [{ FORCE_COLOR: 'true' }, false, 1],
    [{ FORCE_COLOR: '3' }, false, 3],
    [{ FORCE_COLOR: '0' }, true, 0],
    [{ FORCE_COLOR: 'false' }, true, 0],
    [{ FORCE_COLOR: '1', NO_COLOR: '1' }, true, 0], // NO_COLOR wins
  ] as const)('%o, terminal %s: level %d', (env, isTTY, level) => {
    expect(colourLevel(env, isTTY)).toBe(level);
    expect(colours({ env, isTTY }).level).toBe(level);
  });

  it('the deploy CLI colours its errors by the Io it is given', async () => {
    const run = async (isTTY: boolean, env: NodeJS.ProcessEnv) => {
      const err: string[] = [];
      const io: Io = { stdout: () => {}, stderr: (t) => err.push(t), isTTY, env };
      expect(await runDeployCli('deploy', ['--inventory', fleetInventoryPath(), 'opi09'], io)).toBe(2);
      return err.join('\n');
    };
    const plain = await run(true, { TERM: 'xterm-256color', NO_COLOR: '1' });
    expect(plain).toContain("error: unknown host 'opi09'");
    expect(plain).not.toMatch(/\u001b\[/);
    expect(await run(false, { FORCE_COLOR: '1' })).toMatch(SGR);
    expect(await run(true, { TERM: 'xterm-256color' })).toMatch(SGR);
  });

  // The real thing: a pseudo-terminal (util-linux `script`), the entry point as a user runs it.
  const inPty = (env: Record<string, string>, ...argv: string[]) =>
    new Promise<string>((resolve, reject) => {
      const command = ['node_modules/.bin/tsx', ...argv].map((word) => `'${word}'`).join(' ');
      const { NO_COLOR: _no, FORCE_COLOR: _force, ...inherited } = process.env;
      execFile('script', ['-qec', command, '/dev/null'], { cwd: repoRoot, env: { ...inherited, TERM: 'xterm-256color', ...env }, timeout: 60_000 }, (error, stdout) =>
        error && typeof error.code !== 'number' ? reject(error) : resolve(stdout),
      );
    });
  it.skipIf(!existsSync('/usr/bin/script') && !existsSync('/bin/script'))('on a real terminal, NO_COLOR=1 leaves every escape out (deploy and doctor)', { timeout: 60_000 }, async () => {
    const [deployPlain, doctorPlain, deployColour] = await Promise.all([
      inPty({ NO_COLOR: '1' }, 'scripts/deploy.ts', 'opi09'),
      inPty({ NO_COLOR: '1' }, 'scripts/doctor.ts', '--inventory', '/nonexistent/hosts.json'),
      inPty({}, 'scripts/deploy.ts', 'opi09'),
    ]);
    expect(deployPlain).toContain("error: unknown host 'opi09'");
    expect(deployPlain).not.toMatch(SGR);
    expect(doctorPlain).toContain('inventory not found');
    expect(doctorPlain).not.toMatch(SGR);
    expect(deployColour).toMatch(SGR); // the terminal is one
  });
});
