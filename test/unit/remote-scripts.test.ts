/**
 * The target-side rollback script, run for real under sh in a temporary
 * directory that stands for a host: a system profile, a running system, and
 * toplevels whose switch-to-configuration records what it was asked to do.
 * (No systemd here, so the re-activation runs directly.)
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { armArgs, CONFIRM, NOT_ARMED, parseGeneration, parseRollbackReport, PROBE_GENERATION, PROFILE_NOT_SET, ROLLBACK, SWITCH_TO_GENERATION } from '../../lib/remote/scripts.ts';

const run = promisify(execFile);

let dir: string;
let paths: { profile: string; current: string; marker: string; canary: string; old: string; next: string; calls: string };

function toplevel(name: string): string {
  const top = join(dir, 'store', name);
  mkdirSync(join(top, 'bin'), { recursive: true });
  writeFileSync(join(top, 'bin/switch-to-configuration'), `#!/bin/sh\necho "${name} $1" >>"${join(dir, 'calls')}"\nln -sfn "${top}" "${join(dir, 'current-system')}"\n`, { mode: 0o755 });
  return top;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'avalanche-remote-'));
  paths = {
    profile: join(dir, 'profiles/system'),
    current: join(dir, 'current-system'),
    marker: join(dir, 'state/rollbacks.log'),
    canary: join(dir, 'state/canary-r1'),
    old: toplevel('system-old'),
    next: toplevel('system-new'),
    calls: join(dir, 'calls'),
  };
  mkdirSync(join(dir, 'profiles'));
  symlinkSync(paths.old, join(dir, 'profiles/system-4-link'));
  symlinkSync(paths.next, join(dir, 'profiles/system-5-link'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function rollback(prevLink = 'system-4-link') {
  const args = [paths.profile, paths.current, prevLink, paths.old, 'switch', paths.marker, paths.canary];
  const { stdout } = await run('sh', ['-c', ROLLBACK, 'avalanche-rollback', ...args]);
  return parseRollbackReport(stdout);
}

describe('the rollback script on a target', () => {
  it('restores the profile and the running system, logs who did it, and reads the generation again', async () => {
    symlinkSync('system-5-link', paths.profile);
    symlinkSync(paths.next, paths.current);
    const report = await rollback();
    expect(report).toEqual({ outcome: 'restored', watchdogAt: undefined, profileLink: 'system-4-link', profilePath: paths.old, currentSystem: paths.old });
    expect(readlinkSync(paths.profile)).toBe('system-4-link');
    expect(readFileSync(paths.calls, 'utf8')).toBe('system-old switch\n');
    expect(readFileSync(paths.marker, 'utf8')).toMatch(new RegExp(`^\\d+ avalanche-deploy canary-r1 ${paths.old}\\n$`));
  });

  it('when only the profile changed (activation failed before switching, or --goal boot), it makes the previous generation the boot default again', async () => {
    symlinkSync('system-5-link', paths.profile);
    symlinkSync(paths.old, paths.current);
    const report = await rollback();
    expect(report).toMatchObject({ outcome: 'restored', profileLink: 'system-4-link', currentSystem: paths.old });
    expect(readFileSync(paths.calls, 'utf8')).toBe('system-old boot\n');
  });

  it('with nothing to restore it succeeds, changes nothing and logs nothing', async () => {
    symlinkSync('system-4-link', paths.profile);
    symlinkSync(paths.old, paths.current);
    const report = await rollback();
    expect(report.outcome).toBe('unchanged');
    expect(report.currentSystem).toBe(paths.old);
    expect(existsSync(paths.calls)).toBe(false);
    expect(existsSync(paths.marker)).toBe(false);
  });

  it('says when the watchdog had rolled this run back first, and when', async () => {
    symlinkSync('system-4-link', paths.profile);
    symlinkSync(paths.old, paths.current);
    mkdirSync(join(dir, 'state'));
    writeFileSync(paths.marker, `1700000000 watchdog canary-r0 ${paths.old}\n1700000100 watchdog canary-r1 ${paths.old}\n`);
    const report = await rollback();
    expect(report).toMatchObject({ outcome: 'unchanged', watchdogAt: 1700000100 });
  });
});

describe('the confirmation on a target', () => {
  const confirm = () => run('sh', ['-c', CONFIRM, 'avalanche-confirm', paths.canary, paths.marker, paths.profile, paths.current]);

  it('removes the canary', async () => {
    mkdirSync(join(dir, 'state'));
    writeFileSync(paths.canary, '');
    await confirm();
    expect(existsSync(paths.canary)).toBe(false);
  });

  it('too late (canary gone): exit 3, saying what the host runs and when the watchdog rolled it back', async () => {
    symlinkSync('system-4-link', paths.profile);
    symlinkSync(paths.old, paths.current);
    mkdirSync(join(dir, 'state'));
    writeFileSync(paths.marker, `1700000100 watchdog canary-r1 ${paths.old}\n`);
    const late = await confirm().then(() => undefined, (error: { code: number; stdout: string }) => error);
    expect(late!.code).toBe(3);
    expect(parseRollbackReport(late!.stdout)).toEqual({ outcome: undefined, watchdogAt: 1700000100, profileLink: 'system-4-link', profilePath: paths.old, currentSystem: paths.old });
  });
});

describe('the pin-directory check on the cache host', () => {
  it('passes for a directory it can make and write, and says why not otherwise', async () => {
    const { writableDirArgv } = await import('../../lib/cache/gc-roots.ts');
    const ok = writableDirArgv(join(dir, 'gcroots/arm-cache'));
    await expect(run(ok[0]!, ok.slice(1))).resolves.toBeDefined();
    expect(existsSync(join(dir, 'gcroots/arm-cache'))).toBe(true);
    writeFileSync(join(dir, 'file'), '');
    const blocked = writableDirArgv(join(dir, 'file/arm-cache'));
    await expect(run(blocked[0]!, blocked.slice(1))).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining(`cannot create links in ${join(dir, 'file/arm-cache')} as `) });
  });
});

describe('the generation probe on a target', () => {
  const probe = async () => parseGeneration((await run('sh', ['-c', PROBE_GENERATION, 'avalanche-probe', paths.profile, paths.current])).stdout);

  it('reads the profile link, its system and the running one', async () => {
    symlinkSync('system-5-link', paths.profile);
    symlinkSync(paths.next, paths.current);
    expect(await probe()).toEqual({ profileLink: 'system-5-link', profilePath: paths.next, currentSystem: paths.next });
  });

  it('a host never deployed (no profile, no running system) reads as empty, not as the paths asked about', async () => {
    expect(await probe()).toEqual({ profileLink: '', profilePath: '', currentSystem: '' });
  });
});

describe('the switch to a generation (a rollback\'s activation) on a target', () => {
  const switchTo = (number: string, toplevel: string, goal = 'switch') =>
    run('sh', ['-c', SWITCH_TO_GENERATION, 'avalanche-switch', paths.profile, number, toplevel, goal]).then(
      (r) => ({ exitCode: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => ({ exitCode: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
  const calls = () => (existsSync(paths.calls) ? readFileSync(paths.calls, 'utf8').trim().split('\n') : []);

  beforeEach(() => symlinkSync('system-5-link', paths.profile));

  it('points the profile at that generation (a relative link, as nix-env does) and activates its system with the goal', async () => {
    const result = await switchTo('4', paths.old);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(readlinkSync(paths.profile)).toBe('system-4-link');
    expect(calls()).toEqual(['system-old switch']);
    expect(readlinkSync(paths.current)).toBe(paths.old);
  });

  it('test: activates without touching the boot default', async () => {
    expect((await switchTo('4', paths.old, 'test')).exitCode).toBe(0);
    expect(readlinkSync(paths.profile)).toBe('system-5-link');
    expect(calls()).toEqual(['system-old test']);
  });

  it('refuses (exit 4) and changes nothing when the generation is gone or is another system now', async () => {
    for (const [number, toplevel] of [['4', paths.next], ['9', paths.old]] as const) {
      const result = await switchTo(number, toplevel);
      expect(result.exitCode).toBe(4);
      expect(result.stderr).toContain(`generation ${number} of ${paths.profile} is not ${toplevel} any more`);
    }
    expect(readlinkSync(paths.profile)).toBe('system-5-link');
    expect(calls()).toEqual([]);
  });
});

describe('arming the watchdog, then setting the profile (the direct method, in one round trip)', () => {
  // No systemd here: the watchdog runs detached (setsid). A stand-in nix-env points the profile at the toplevel.
  const arm = async (options: { nixEnvFails?: boolean; canary?: string } = {}) => {
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'nix-env'), `#!/bin/sh\n${options.nixEnvFails ? 'echo "error: opening lock file" >&2; exit 1' : 'ln -sfn "$4" "$2"'}\n`, { mode: 0o755 });
    // The watchdog's own args: profile current prev_link prev_current goal marker canary confirm_seconds arm_seconds.
    const watchdog = [paths.profile, paths.current, 'system-4-link', paths.old, 'switch', paths.marker, options.canary ?? paths.canary, '30', '1'];
    const [command, ...args] = armArgs(watchdog, { profile: paths.profile, toplevel: paths.next });
    return run(command!, args, { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } }).then(() => 0, (error: { code: number }) => error.code);
  };
  const until = async (done: () => boolean) => {
    for (let waited = 0; !done() && waited < 5000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
    return done();
  };
  beforeEach(() => {
    symlinkSync('system-4-link', paths.profile);
    symlinkSync(paths.old, paths.current);
  });

  it('arms, sets the profile; with no activation within arm_seconds the watchdog puts the profile back', async () => {
    expect(await arm()).toBe(0);
    expect(readlinkSync(paths.profile)).toBe(paths.next);
    expect(existsSync(paths.canary)).toBe(true);
    // The run stopped here (no activation): after arm_seconds (1) the watchdog restores the profile and the boot default.
    expect(await until(() => readlinkSync(paths.profile) === 'system-4-link' && !existsSync(paths.canary))).toBe(true);
    expect(await until(() => existsSync(paths.calls) && readFileSync(paths.calls, 'utf8').includes('system-old boot'))).toBe(true);
    expect(readlinkSync(paths.current)).toBe(paths.old);
  });

  it(`exits ${PROFILE_NOT_SET} when the profile cannot be set (armed), ${NOT_ARMED} when the watchdog cannot be armed (nothing changed)`, async () => {
    expect(await arm({ nixEnvFails: true })).toBe(PROFILE_NOT_SET);
    expect(existsSync(paths.canary)).toBe(true);
    expect(readlinkSync(paths.profile)).toBe('system-4-link');
    writeFileSync(join(dir, 'a-file'), '');
    expect(await arm({ canary: join(dir, 'a-file/canary-r2') })).toBe(NOT_ARMED);
    expect(readlinkSync(paths.profile)).toBe('system-4-link');
    // The first arm's watchdog gives up after its second; the profile was never changed.
    expect(await until(() => !existsSync(paths.canary))).toBe(true);
    expect(readlinkSync(paths.profile)).toBe('system-4-link');
  });
});
