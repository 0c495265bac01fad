/**
 * Before touching more than one host, a person at a terminal is asked, with
 * what will happen; --yes, --json, CI and a non-terminal skip the question.
 * (A report directory that cannot be written stops a run that was not
 * stopped by the question, before anything runs: exit 2.)
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runDeployCli } from '../../lib/cli/deploy.ts';
import type { Io } from '../../lib/cli/io.ts';
import { repoRoot, fleetInventoryPath } from '../helpers/fixtures.ts';

async function deployAll(args: string[], options: { answer?: boolean; env?: NodeJS.ProcessEnv; terminal?: boolean; command?: 'deploy' | 'deploy-all' } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'confirm-'));
  await writeFile(join(dir, 'a-file'), '');
  const asked: string[] = [];
  const err: string[] = [];
  const io: Io = {
    stdout: () => {},
    stderr: (text) => err.push(text),
    isTTY: true,
    env: options.env ?? {},
    ask: options.terminal === false ? undefined : async (question) => (asked.push(question), options.answer ?? false),
  };
  const code = await runDeployCli(options.command ?? 'deploy-all', ['--inventory', fleetInventoryPath(), '--report-dir', join(dir, 'a-file', 'runs'), ...args], io);
  return { code, asked, stderr: err.join('\n') };
}

describe('confirmation before a fleet deploy', () => {
  it('asks on a terminal, showing the hosts, goal and seed; no is exit 1 and runs nothing', async () => {
    const { code, asked, stderr } = await deployAll(['--goal', 'boot']);
    expect(asked).toEqual(['deploy-all: boot 3 hosts (opi01, opi02, opi03), seed opi03, at most 3 at a time. Deploy?']);
    expect(code).toBe(1);
    expect(stderr).toContain('not deployed: not confirmed (--yes skips the question)');
  });

  it('says that the hosts will be rebooted (--reboot)', async () => {
    const { asked } = await deployAll(['--goal', 'boot', '--reboot', '--rolling']);
    expect(asked).toEqual(['deploy-all: boot and reboot 3 hosts (opi01, opi02, opi03), seed opi03, opi03 first, rolling in waves of 1. Deploy?']);
  });

  it('goes on after yes (here: to the report-directory check, exit 2)', async () => {
    expect(await deployAll([], { answer: true })).toMatchObject({ code: 2, asked: [expect.stringContaining('Deploy?')] });
  });

  it('does not ask with --yes, --json, under CI, without a terminal, or for one host', async () => {
    for (const [args, options] of [
      [['--yes'], {}],
      [['-y'], {}],
      [['--json'], {}],
      [[], { env: { CI: 'true' } }],
      [[], { terminal: false }],
      [['opi01'], { command: 'deploy' }],
    ] as const) {
      const run = await deployAll([...args], options);
      expect(run.asked, JSON.stringify(args)).toEqual([]);
      expect(run.code).toBe(2);
    }
  });
});
