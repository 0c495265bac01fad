/**
 * The generation listing: its parser on output as hosts print it, and the
 * script itself run under sh in a temporary directory that stands for a
 * host (a system profile with its links, a running and a booted system).
 */
import { execFile } from 'node:child_process';
import { lutimesSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  generationByNumber,
  generationsArgv,
  hostGenerationsSchema,
  LIST_GENERATIONS,
  parseGenerations,
  previousGeneration,
} from '../../lib/remote/generations.ts';
import type { RemoteHost } from '../../lib/remote/host.ts';

const run = promisify(execFile);

const A = '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-opi01-24.11';
const B = '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-nixos-system-opi01-24.11';
const C = '/nix/store/cccccccccccccccccccccccccccccccc-nixos-system-opi01-24.11';

/** What a host that was deployed three times, rebooted after the second, prints (links listed in the shell's glob order). */
const THREE = [
  'format=avalanche-generations-1',
  'profile-name=system',
  'profile-link=system-12-link',
  `current-system=${C}`,
  `booted-system=${B}`,
  `generation=10 1764400000 ${A}`,
  `generation=12 1764403600 ${C}`,
  `generation=9 1764300000 ${A}`,
  `generation=11 1764401800 ${B}`,
  '',
].join('\n');

describe('parseGenerations', () => {
  it('reads every generation, sorted by number, with its date and which is boot default, current and booted', () => {
    const parsed = parseGenerations(THREE);
    expect(hostGenerationsSchema.parse(parsed)).toEqual(parsed);
    expect(parsed).toEqual({
      profileGeneration: 12,
      currentSystem: C,
      bootedSystem: B,
      generations: [
        { number: 9, createdAt: '2025-11-28T03:20:00.000Z', toplevel: A, bootDefault: false, current: false, booted: false },
        { number: 10, createdAt: '2025-11-29T07:06:40.000Z', toplevel: A, bootDefault: false, current: false, booted: false },
        { number: 11, createdAt: '2025-11-29T07:36:40.000Z', toplevel: B, bootDefault: false, current: false, booted: true },
        { number: 12, createdAt: '2025-11-29T08:06:40.000Z', toplevel: C, bootDefault: true, current: true, booted: false },
      ],
    });
  });

  it('the previous generation is the highest below the profile\'s, not the one before it in time or the booted one', () => {
    const parsed = parseGenerations(THREE.replace('profile-link=system-12-link', 'profile-link=system-11-link'));
    expect(parsed.profileGeneration).toBe(11);
    expect(previousGeneration(parsed)?.number).toBe(10);
    expect(previousGeneration(parseGenerations(THREE))?.toplevel).toBe(B);
    expect(generationByNumber(parsed, 9)?.toplevel).toBe(A);
    expect(generationByNumber(parsed, 13)).toBeUndefined();
  });

  it('a host never deployed: no profile, no generations, nothing to go back to', () => {
    const parsed = parseGenerations('format=avalanche-generations-1\nprofile-name=system\nprofile-link=\ncurrent-system=\nbooted-system=\n');
    expect(parsed).toEqual({ generations: [] });
    expect(previousGeneration(parsed)).toBeUndefined();
  });

  it('only the first generation: nothing before it', () => {
    const parsed = parseGenerations(`format=avalanche-generations-1\nprofile-name=system\nprofile-link=system-1-link\ncurrent-system=${A}\nbooted-system=\ngeneration=1 1764400000 ${A}\n`);
    expect(parsed.generations).toEqual([{ number: 1, createdAt: '2025-11-29T07:06:40.000Z', toplevel: A, bootDefault: true, current: true, booted: false }]);
    expect(parsed.bootedSystem).toBeUndefined();
    expect(previousGeneration(parsed)).toBeUndefined();
  });

  it('a running system that is no generation (nixos-rebuild test) flags none as current', () => {
    const parsed = parseGenerations(THREE.replace(`current-system=${C}`, 'current-system=/nix/store/dddddddddddddddddddddddddddddddd-test'));
    expect(parsed.currentSystem).toMatch(/-test$/);
    expect(parsed.generations.filter((g) => g.current)).toEqual([]);
  });

  it('a profile pointing elsewhere than one of its own links has no profile generation', () => {
    expect(parseGenerations(THREE.replace('profile-link=system-12-link', `profile-link=${C}`)).profileGeneration).toBeUndefined();
    expect(parseGenerations(THREE.replace('profile-link=system-12-link', 'profile-link=other-12-link')).profileGeneration).toBeUndefined();
    // an absolute link to its own generation still counts
    expect(parseGenerations(THREE.replace('profile-link=system-12-link', 'profile-link=/nix/var/nix/profiles/system-12-link')).profileGeneration).toBe(12);
  });

  it('a date stat could not read is left out, the generation kept', () => {
    const parsed = parseGenerations(THREE.replace('generation=9 1764300000', 'generation=9 '));
    expect(generationByNumber(parsed, 9)).toEqual({ number: 9, toplevel: A, bootDefault: false, current: false, booted: false });
  });

  it('refuses what is not the script\'s output rather than reading it as no generations', () => {
    expect(() => parseGenerations('')).toThrow(/not a generation listing/);
    expect(() => parseGenerations('Last login: today\n')).toThrow(/not a generation listing/);
    expect(() => parseGenerations(`${THREE}generation=x 1 ${A}\n`)).toThrow(/cannot read the generation line/);
  });
});

describe('generationsArgv', () => {
  it('runs the constant script over ssh as the deploy user, every value a positional argument', () => {
    const target: RemoteHost = { user: 'deploy', address: { kind: 'name', host: 'opi01' }, escalation: 'sudo', sshOptions: ['-o', 'BatchMode=yes'] };
    const argv = generationsArgv(target, { profile: '/nix/var/nix/profiles/system', currentSystem: '/run/current-system' });
    expect(argv.slice(0, 5)).toEqual(['ssh', '-o', 'BatchMode=yes', 'deploy@opi01', '--']);
    expect(argv).toHaveLength(6);
    expect(argv[5]).not.toContain('sudo');
    expect(argv[5]).toMatch(/^sh -c '.*' avalanche-generations \/nix\/var\/nix\/profiles\/system \/run\/current-system \/run\/booted-system$/s);
  });
});

describe('the generation listing script on a host', () => {
  let dir: string;
  let profile: string;
  let current: string;
  let booted: string;

  function toplevel(name: string): string {
    const top = join(dir, 'store', name);
    mkdirSync(top, { recursive: true });
    return top;
  }
  function generation(n: number, top: string, mtime: number): void {
    const link = join(dir, 'profiles', `system-${n}-link`);
    symlinkSync(top, link);
    lutimesSync(link, mtime, mtime);
  }
  async function list(): Promise<ReturnType<typeof parseGenerations>> {
    const { stdout } = await run('sh', ['-c', LIST_GENERATIONS, 'avalanche-generations', profile, current, booted]);
    return parseGenerations(stdout);
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'avalanche-generations-'));
    profile = join(dir, 'profiles/system');
    current = join(dir, 'current-system');
    booted = join(dir, 'booted-system');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('lists the links with their own mtime (not their target\'s), the boot default, the running and the booted system', async () => {
    mkdirSync(join(dir, 'profiles'));
    const old = toplevel('old');
    const next = toplevel('new');
    generation(1, old, 1_700_000_000);
    generation(2, next, 1_700_003_600);
    generation(10, next, 1_700_007_200);
    symlinkSync('system-2-link', profile);
    symlinkSync(next, current);
    symlinkSync(old, booted);
    // not generations: other profiles' links, a temporary link, a link without a number, a file
    symlinkSync(old, join(dir, 'profiles/system-profiles-1-link'));
    symlinkSync(old, join(dir, 'profiles/other-3-link'));
    symlinkSync(old, join(dir, 'profiles/system-4-link.tmp'));
    symlinkSync(old, join(dir, 'profiles/system--link'));
    writeFileSync(join(dir, 'profiles/system-5-link'), 'not a link');
    const listed = await list();
    expect(listed).toEqual({
      profileGeneration: 2,
      currentSystem: next,
      bootedSystem: old,
      generations: [
        { number: 1, createdAt: new Date(1_700_000_000_000).toISOString(), toplevel: old, bootDefault: false, current: false, booted: true },
        { number: 2, createdAt: new Date(1_700_003_600_000).toISOString(), toplevel: next, bootDefault: true, current: true, booted: false },
        { number: 10, createdAt: new Date(1_700_007_200_000).toISOString(), toplevel: next, bootDefault: false, current: true, booted: false },
      ],
    });
    expect(previousGeneration(listed)?.number).toBe(1);
  });

  it('a host never deployed (no profile directory, no running or booted system) lists nothing, and says so', async () => {
    expect(await list()).toEqual({ generations: [] });
  });

  it('a dangling booted-system is absent, not the link\'s own path', async () => {
    mkdirSync(join(dir, 'profiles'));
    const top = toplevel('only');
    generation(1, top, 1_700_000_000);
    symlinkSync('system-1-link', profile);
    symlinkSync(top, current);
    symlinkSync(join(dir, 'store/gone'), booted);
    const listed = await list();
    expect(listed.bootedSystem).toBeUndefined();
    expect(listed.generations).toHaveLength(1);
    expect(listed.generations[0]).toMatchObject({ bootDefault: true, current: true, booted: false });
  });
});
