/**
 * The closure diff: its parsers on what real Nix 2.8 and 2.26 printed in the
 * lab (test/fixtures/diff-closures/), on the later renderSize format (from
 * Nix's source), its one-line summary, and the script itself run under sh
 * with stand-ins for nix and nix-store.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CLOSURE_DIFF,
  type ClosureDiff,
  closureDiffArgv,
  closureDiffLocalArgv,
  formatBytes,
  hostClosureDiffSchema,
  type PackageDiff,
  parseClosureDiffOutput,
  parseDiffClosures,
  summarizeClosureDiff,
} from '../../lib/nix/closure-diff.ts';
import type { RemoteHost } from '../../lib/remote/host.ts';
import { fixture } from '../helpers/fixtures.ts';

const run = promisify(execFile);

const DC1 = '/nix/store/khlwx1j4sa205k1ra519i9480nfz56zl-nixos-system-opi01-25.05.lab-dc1';
const DC2 = '/nix/store/5na2yf1pdjdrzhbnzyl8ly2adx28ah8c-nixos-system-opi01-25.05.lab-dc2';

/** What both Nix versions listed between the lab's generations dc1 and dc2 (see the fixtures' README). */
const LAB_PACKAGES: PackageDiff[] = [
  { name: 'lab-data', change: 'resized', before: [], after: [], sizeDeltaBytes: 49_152 },
  { name: 'lab-lib', change: 'changed', before: ['1.0', '1.1'], after: ['2.0'] },
  { name: 'lab-new', change: 'added', before: [], after: ['0.1'], sizeDeltaBytes: 20_582 },
  { name: 'lab-old', change: 'removed', before: ['0.9'], after: [], sizeDeltaBytes: -12_390 },
  { name: 'lab-tools', change: 'changed', before: ['2.1'], after: ['2.2'], sizeDeltaBytes: 24_576 },
  { name: 'linux', change: 'changed', before: ['6.1.1'], after: ['6.1.2'] },
  { name: 'nixos-system-opi01', change: 'changed', before: ['25.05.lab-dc1'], after: ['25.05.lab-dc2'] },
];

const LAB_DIFF: ClosureDiff = {
  kind: 'diff',
  before: DC1,
  after: DC2,
  packages: LAB_PACKAGES,
  closureBytes: { before: 62_488, after: 142_976 },
  sizeDeltaBytes: 80_488,
};

describe('parseClosureDiffOutput on what the lab printed', () => {
  it.each(['nix-2.26.out', 'nix-2.8.out'])('%s: every package, its versions and size, and the exact closure sizes', (name) => {
    const diff = parseClosureDiffOutput(fixture(`diff-closures/${name}`));
    expect(diff).toEqual(LAB_DIFF);
    expect(hostClosureDiffSchema.parse(diff)).toEqual(diff);
  });

  it('a first deploy: the new closure only', () => {
    expect(parseClosureDiffOutput(fixture('diff-closures/first-deploy-2.26.out'))).toEqual({ kind: 'first-deploy', after: DC2, closureBytes: { after: 142_976 } });
  });

  it('the same system: no packages, no size change', () => {
    const diff = parseClosureDiffOutput(fixture('diff-closures/unchanged-2.26.out'));
    expect(diff).toEqual({ kind: 'diff', before: DC2, after: DC2, packages: [], closureBytes: { before: 142_976, after: 142_976 }, sizeDeltaBytes: 0 });
    expect(summarizeClosureDiff(diff)).toBe('no package changes, +0 B');
  });

  it('refuses output that is not the script\'s, or sizes that are not numbers', () => {
    expect(() => parseClosureDiffOutput('linux: 6.1.1 → 6.1.2\n')).toThrow(/not a closure diff/);
    const good = fixture('diff-closures/nix-2.26.out');
    expect(() => parseClosureDiffOutput(good.replace('closure-bytes-before=62488', 'closure-bytes-before='))).toThrow(/closure-bytes-before is "", not a number of bytes/);
    expect(() => parseClosureDiffOutput(good.replace('diff-closures:\n', ''))).toThrow(/no "diff-closures:" line/);
  });
});

describe('parseDiffClosures', () => {
  it('strips the colour escapes Nix writes even into a pipe', () => {
    expect(parseDiffClosures('lab-old: 0.9 → ∅, \x1b[32;1m-12.1 KiB\x1b[0m\n')).toEqual([
      { name: 'lab-old', change: 'removed', before: ['0.9'], after: [], sizeDeltaBytes: -12_390 },
    ]);
  });

  it('reads later Nix\'s sizes (renderSize: no +, larger units) and its ε for a path without a version', () => {
    const later = ['linux: 6.1.1 → 6.1.2, \x1b[31;1m1.2 MiB\x1b[0m', 'firmware: 2.3 GiB', 'dbus: -16.0 KiB', 'hello-script: ε → ∅', 'glibc: 2.39-52 → 2.40-36, 10.5 KiB', ''].join('\n');
    expect(parseDiffClosures(later)).toEqual([
      { name: 'linux', change: 'changed', before: ['6.1.1'], after: ['6.1.2'], sizeDeltaBytes: 1_258_291 },
      { name: 'firmware', change: 'resized', before: [], after: [], sizeDeltaBytes: 2_469_606_195 },
      { name: 'dbus', change: 'resized', before: [], after: [], sizeDeltaBytes: -16_384 },
      { name: 'hello-script', change: 'removed', before: [''], after: [] },
      { name: 'glibc', change: 'changed', before: ['2.39-52'], after: ['2.40-36'], sizeDeltaBytes: 10_752 },
    ]);
  });

  it('reads a kernel with its modules output, several versions a side, and large deltas in KiB (the 2.x format)', () => {
    const fleet = ['firmware: 20250101 → 20250201, +2577.9 KiB', 'etc-hosts: ∅ → ε', 'linux: 6.1.1, 6.1.1-modules → 6.1.2, 6.1.2-modules, -434.2 KiB', 'source: +28.6 KiB'].join('\n');
    expect(parseDiffClosures(fleet)).toEqual([
      { name: 'firmware', change: 'changed', before: ['20250101'], after: ['20250201'], sizeDeltaBytes: 2_639_770 },
      { name: 'etc-hosts', change: 'added', before: [], after: [''] },
      { name: 'linux', change: 'changed', before: ['6.1.1', '6.1.1-modules'], after: ['6.1.2', '6.1.2-modules'], sizeDeltaBytes: -444_621 },
      { name: 'source', change: 'resized', before: [], after: [], sizeDeltaBytes: 29_286 },
    ]);
  });

  it('nothing listed is no packages', () => {
    expect(parseDiffClosures('')).toEqual([]);
  });

  it.each(['warning: something', 'linux 6.1.1 → 6.1.2', 'linux: 6.1.1, 6.1.2', 'linux: +12 parsecs'])('throws on a line it cannot read: %s', (line) => {
    expect(() => parseDiffClosures(`${line}\n`)).toThrow(/cannot read this line of nix store diff-closures/);
  });
});

describe('summarizeClosureDiff', () => {
  it('counts each kind of change, names the kernel\'s, and gives the closure\'s size change', () => {
    expect(summarizeClosureDiff(LAB_DIFF)).toBe('4 changed (linux 6.1.1 → 6.1.2), 1 added, 1 removed, 1 resized, +78.6 KiB');
  });

  it('without a kernel change it names the first change that is not the system itself', () => {
    const packages = LAB_PACKAGES.filter((p) => p.name !== 'linux' && p.name !== 'lab-lib');
    expect(summarizeClosureDiff({ ...LAB_DIFF, packages, sizeDeltaBytes: -1_300_000 })).toBe('2 changed (lab-tools 2.1 → 2.2), 1 added, 1 removed, 1 resized, -1.2 MiB');
    const onlySystem = LAB_PACKAGES.filter((p) => p.name.startsWith('nixos-system-'));
    expect(summarizeClosureDiff({ ...LAB_DIFF, packages: onlySystem, sizeDeltaBytes: 312 })).toBe('1 changed (nixos-system-opi01 25.05.lab-dc1 → 25.05.lab-dc2), +312 B');
  });

  it('a first deploy says so, with the new closure\'s size', () => {
    expect(summarizeClosureDiff({ kind: 'first-deploy', after: DC2, closureBytes: { after: 142_976 } })).toBe('first deploy, 139.6 KiB');
  });
});

describe('formatBytes', () => {
  it.each([
    [0, {}, '0 B'],
    [1023, {}, '1023 B'],
    [1024, {}, '1.0 KiB'],
    [80_488, { signed: true }, '+78.6 KiB'],
    [-12_390, { signed: true }, '-12.1 KiB'],
    [1_258_291, {}, '1.2 MiB'],
    [5 * 1024 ** 3, {}, '5.0 GiB'],
  ] as const)('%d → %s', (bytes, options, text) => {
    expect(formatBytes(bytes, options)).toBe(text);
  });
});

describe('closureDiffArgv', () => {
  const target: RemoteHost = { user: 'deploy', address: { kind: 'name', host: 'opi01' }, escalation: 'sudo', sshOptions: ['-o', 'BatchMode=yes'] };

  it('runs the constant script over ssh as the deploy user (no sudo), the paths as positional arguments', () => {
    const argv = closureDiffArgv(target, { current: '{{previous-system}}', toplevel: '{{toplevel:opi01}}' });
    expect(argv.slice(0, 5)).toEqual(['ssh', '-o', 'BatchMode=yes', 'deploy@opi01', '--']);
    expect(argv).toHaveLength(6);
    expect(argv[5]).not.toContain('sudo');
    expect(argv[5]).toMatch(/^sh -c '.*' avalanche-closure-diff '\{\{previous-system\}\}' '\{\{toplevel:opi01\}\}'$/s);
  });

  it('a first deploy passes an empty current system', () => {
    expect(closureDiffLocalArgv({ current: '', toplevel: DC2 })).toEqual(['sh', '-c', CLOSURE_DIFF, 'avalanche-closure-diff', '', DC2]);
    expect(closureDiffArgv(target, { current: '', toplevel: DC2 })[5]).toMatch(/ avalanche-closure-diff '' \/nix\/store\/\S+-dc2$/);
  });
});

describe('the closure-diff script under sh', () => {
  let dir: string;
  let calls: string;

  /**
   * Stand-ins as strict as Nix: nix-store --realise succeeds only when every
   * path given is in `valid` (here or substitutable; else Nix's error for the
   * first that is not), and then they are here; nix path-info -S answers
   * only for paths here (else Nix's "is not valid": it fetches nothing, it
   * only asks the substituters first unless given `--option substitute
   * false`, which the call list shows), a line per path, sorted as Nix's
   * StorePathSet is; store diff-closures prints what Nix printed in
   * the lab. `here`: the paths in the store at the start (default: `valid`).
   */
  function stubs(valid: readonly string[], here: readonly string[] = valid): void {
    const diffClosures = fixture('diff-closures/nix-2.26.out').split('diff-closures:\n')[1]!;
    writeFileSync(join(dir, 'diff-closures.out'), diffClosures);
    const store = join(dir, 'store');
    writeFileSync(store, here.map((p) => `${p}\n`).join(''));
    const sizes: Record<string, number> = { [DC1]: 62_488, [DC2]: 142_976 };
    writeFileSync(
      join(dir, 'nix-store'),
      `#!/bin/sh\necho "nix-store $*" >>"${calls}"\nshift 2\nfor p in "$@"; do case " ${valid.join(' ')} " in *" $p "*) ;; *) echo "error: path '$p' is required, but there is no substituter that can build it" >&2; exit 1 ;; esac; done\nprintf '%s\\n' "$@" >>"${store}"\nprintf '%s\\n' "$@"\n`,
    );
    writeFileSync(
      join(dir, 'nix'),
      `#!/bin/sh\necho "nix $*" >>"${calls}"\nshift 2\nsubstitute=true\nif [ "$1" = --option ]; then [ "$2" = substitute ] && substitute=$3; shift 3; fi\ncase "$1 $2" in\n` +
        // Without substitute=false Nix 2.8 first prints what it would fetch ("this path will be fetched"), and fails the same.
        `  "path-info -S") shift 2; for p in $(printf '%s\\n' "$@" | sort -u); do grep -qxF -- "$p" "${store}" && continue; ` +
        `[ "$substitute" = true ] && echo "this path will be fetched: $p" >&2; echo "error: path '$p' is not valid" >&2; exit 1; done; ` +
        `for p in $(printf '%s\\n' "$@" | sort -u); do case "$p" in ${Object.entries(sizes).map(([p, n]) => `${p}) printf '%s\\t%11d\\n' "$p" ${n} ;;`).join(' ')} *) exit 1 ;; esac; done ;;\n` +
        `  "store diff-closures") cat "${join(dir, 'diff-closures.out')}" ;;\n  *) exit 2 ;;\nesac\n`,
    );
    chmodSync(join(dir, 'nix-store'), 0o755);
    chmodSync(join(dir, 'nix'), 0o755);
  }

  /** The Nix commands the script ran, in order, as the stand-ins logged them. */
  const callsMade = () => readFileSync(calls, 'utf8').split('\n').filter(Boolean);
  /** How the script spells `nix` (lib/nix/closure-diff.ts nixc). */
  const NIXC = 'nix --extra-experimental-features nix-command';

  const script = (current: string, toplevel: string) => {
    const [sh, ...args] = closureDiffLocalArgv({ current, toplevel });
    return run(sh!, args, { env: { PATH: `${dir}:/usr/bin:/bin` } }).then(
      (r) => ({ exitCode: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => ({ exitCode: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'avalanche-closure-diff-'));
    calls = join(dir, 'calls');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('both systems here (after the copy or the activation): the sizes and the diff in the lab\'s very format, nothing realised', async () => {
    stubs([DC1, DC2]);
    const result = await script(DC1, DC2);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe(fixture('diff-closures/nix-2.26.out'));
    // One Nix process per question: both sizes at once.
    expect(callsMade()).toEqual([
      `${NIXC} --option substitute false path-info -S ${DC2} ${DC1}`,
      `${NIXC} store diff-closures ${DC1} ${DC2}`,
    ]);
  });

  it('the new toplevel not here yet (--interactive, before the copy): realises both at once, then the same', async () => {
    stubs([DC1, DC2], [DC1]);
    const result = await script(DC1, DC2);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe(fixture('diff-closures/nix-2.26.out'));
    // The first question's "not valid" is expected, not the user's to see.
    expect(result.stderr).toBe('');
    expect(callsMade()).toEqual([
      `${NIXC} --option substitute false path-info -S ${DC2} ${DC1}`,
      `nix-store --realise --no-gc-warning ${DC2} ${DC1}`,
      `${NIXC} path-info -S ${DC2} ${DC1}`,
      `${NIXC} store diff-closures ${DC1} ${DC2}`,
    ]);
  });

  it('the current system not here (another machine compares): realised with the new one, then the same', async () => {
    stubs([DC1, DC2], [DC2]);
    const result = await script(DC1, DC2);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe(fixture('diff-closures/nix-2.26.out'));
    expect(callsMade()).toContain(`nix-store --realise --no-gc-warning ${DC2} ${DC1}`);
  });

  it('a first deploy with the new toplevel not here yet: realised alone, its size only', async () => {
    stubs([DC2], []);
    const result = await script('', DC2);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe(fixture('diff-closures/first-deploy-2.26.out'));
    expect(callsMade()).toEqual([
      `${NIXC} --option substitute false path-info -S ${DC2}`,
      `nix-store --realise --no-gc-warning ${DC2}`,
      `${NIXC} path-info -S ${DC2}`,
    ]);
  });

  it('a first deploy: the new closure\'s size only, nothing compared', async () => {
    stubs([DC2]);
    const result = await script('', DC2);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe(fixture('diff-closures/first-deploy-2.26.out'));
    expect(readFileSync(calls, 'utf8')).not.toContain('diff-closures');
  });

  it('exits 3, saying why, when the new toplevel can be neither found nor substituted', async () => {
    stubs([DC1]);
    const result = await script(DC1, DC2);
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`closure-diff: cannot get the new toplevel ${DC2} here: it is neither in this host's store nor served by its substituters`);
  });

  it('exits 4 when the current system cannot be had (comparing on another machine than the target)', async () => {
    stubs([DC2]);
    const result = await script(DC1, DC2);
    expect(result.exitCode).toBe(4);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`closure-diff: cannot get the current system ${DC1} here`);
  });
});
