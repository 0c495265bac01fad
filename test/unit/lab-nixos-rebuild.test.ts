// The lab's strict nixos-rebuild stand-ins (test/lab/bin/{bash-era,ng}/nixos-rebuild), run as real
// processes with fake nix, ssh and nix-copy-closure first on PATH that record their argv. A unit test
// of the stand-ins' argument handling and command sequence; the lab end-to-end tests use the real ones.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = resolve(import.meta.dirname, '../lab/bin');
const BASH_ERA = join(BIN, 'bash-era/nixos-rebuild');
const NG = join(BIN, 'ng/nixos-rebuild');
const FLAKE = 'path:/lab/flake#opi01';
const ATTR = 'path:/lab/flake#nixosConfigurations."opi01"';
const TOPLEVEL = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-opi01-1';
const TARGET = 'deploy@10.213.77.11';
const SSHOPTS = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5'];
const LOCAL_SYSTEM = `${spawnSync('uname', ['-m'], { encoding: 'utf8' }).stdout.trim().replace(/^i.86$/, 'i686')}-linux`;
const FOREIGN_SYSTEM = LOCAL_SYSTEM === 'aarch64-linux' ? 'x86_64-linux' : 'aarch64-linux';
const EXPERIMENTAL = ['--extra-experimental-features', 'nix-command flakes'];
const BASH_ERA_SYSTEMD_RUN = ['systemd-run', '-E', 'LOCALE_ARCHIVE', '-E', 'NIXOS_INSTALL_BOOTLOADER=', '--collect',
  '--no-ask-password', '--pipe', '--quiet', '--same-dir', '--service-type=exec',
  '--unit=nixos-rebuild-switch-to-configuration', '--wait'];
const NG_SYSTEMD_RUN = ['systemd-run', '-E', 'LOCALE_ARCHIVE', '-E', 'NIXOS_INSTALL_BOOTLOADER', '-E', 'NIXOS_NO_CHECK',
  '--collect', '--no-ask-password', '--pipe', '--quiet', '--service-type=exec',
  '--unit=nixos-rebuild-switch-to-configuration', '--wait'];

// One fake for all three commands: records "name\x1farg\x1f…" per call, then acts by name.
const FAKE = `#!/usr/bin/env bash
name=$(basename "$0")
{ printf '%s\\x1f' "$name" "$@"; printf '\\n'; } >>"$FAKE_LOG"
has() { local a; for a in "\${@:2}"; do [[ "$a" == "$1" ]] && return 0; done; return 1; }
case "$name" in
  nix)
    if has eval "$@"; then printf '%s' "$FAKE_TARGET_SYSTEM"; exit "\${FAKE_EVAL_RC:-0}"; fi
    if has build "$@"; then
      echo "building '/nix/store/xxx-nixos-system-opi01-1.drv' on 'ssh://nix-builder@opi03'..." >&2
      [[ -n "\${FAKE_BUILD_RC:-}" ]] && exit "$FAKE_BUILD_RC"
      has --print-out-paths "$@" && echo "$FAKE_TOPLEVEL"
      prev=""; for a in "$@"; do [[ "$prev" == --out-link ]] && ln -sfn "$FAKE_TOPLEVEL" "$a"; prev=$a; done
    fi
    exit 0 ;;
  nix-copy-closure) printf '%s\\n' "$NIX_SSHOPTS" >"$FAKE_LOG.copy-sshopts"; exit "\${FAKE_COPY_RC:-0}" ;;
  ssh)
    cat >>"$FAKE_LOG.ssh-stdin"
    last=\${!#}
    if [[ "$last" == true ]]; then exit "\${FAKE_PROBE_RC:-0}"; fi
    if has -f "$@"; then exit "\${FAKE_TEST_F_RC:-0}"; fi
    if [[ "$last" == switch || "$last" == boot || "$last" == test || "$last" == dry-activate ]]; then
      echo "activating the configuration..." >&2; exit "\${FAKE_ACTIVATE_RC:-0}"
    fi
    exit "\${FAKE_SSH_RC:-0}" ;;
esac
`;

let dir: string;
let fakeBin: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lab-nixos-rebuild-'));
  fakeBin = join(dir, 'bin');
  spawnSync('mkdir', [fakeBin]);
  writeFileSync(join(fakeBin, 'fake'), FAKE);
  chmodSync(join(fakeBin, 'fake'), 0o755);
  for (const name of ['nix', 'ssh', 'nix-copy-closure']) symlinkSync('fake', join(fakeBin, name));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let runNo = 0;
interface Run { status: number | null; stdout: string; stderr: string; calls: string[][]; sshStdin: string; copySshOpts: string }
function run(cmd: string, args: string[], env: Record<string, string> = {}, input = ''): Run {
  const log = join(dir, `calls-${++runNo}`);
  writeFileSync(log, '');
  const r = spawnSync(cmd, args, {
    cwd: dir,
    input,
    encoding: 'utf8',
    env: {
      PATH: `${fakeBin}:${process.env.PATH}`,
      HOME: dir,
      NIX_SSHOPTS: SSHOPTS.join(' '),
      FAKE_LOG: log,
      FAKE_TOPLEVEL: TOPLEVEL,
      FAKE_TARGET_SYSTEM: LOCAL_SYSTEM,
      ...env,
    },
  });
  const read = (p: string) => { try { return readFileSync(p, 'utf8'); } catch { return ''; } };
  const calls = read(log).split('\n').filter(Boolean).map((line) => line.split('\x1f').slice(0, -1));
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, calls, sshStdin: read(`${log}.ssh-stdin`), copySshOpts: read(`${log}.copy-sshopts`).trim() };
}

// Every option each real tool parses, with how many values it takes (facts from nixpkgs' sources).
const BASH_ERA_FLAGS: Record<string, number> = {
  '--help': 0, '--file': 1, '--attr': 1, '--install-grub': 0, '--install-bootloader': 0, '--no-build-nix': 0,
  '--rollback': 0, '--upgrade': 0, '--upgrade-all': 0, '--use-substitutes': 0, '--substitute-on-destination': 0,
  '--builders': 1, '--max-jobs': 1, '--cores': 1, '--log-format': 1, '--accept-flake-config': 0, '--quiet': 0,
  '--print-build-logs': 0, '--no-build-output': 0, '--show-trace': 0, '--refresh': 0, '--impure': 0, '--offline': 0,
  '--no-net': 0, '--keep-going': 0, '--keep-failed': 0, '--fallback': 0, '--repair': 0, '--verbose': 0, '--option': 2,
  '--fast': 0, '--profile-name': 1, '--specialisation': 1, '--build-host': 1, '--target-host': 1,
  '--use-remote-sudo': 0, '--no-ssh-tty': 0, '--flake': 1, '--no-flake': 0, '--recreate-lock-file': 0,
  '--no-update-lock-file': 0, '--no-write-lock-file': 0, '--no-registries': 0, '--commit-lock-file': 0,
  '--update-input': 1, '--override-input': 2, '--json': 0, '--arg': 2, '--argstr': 2,
};
const BASH_ERA_SHORT = ['-f', '-A', '-s', '-I', '-j', '-L', '-Q', '-k', '-K', '-v', '-vv', '-vvvvv', '-j4', '-p', '-c'];
const NG_FLAGS: Record<string, number> = {
  '--verbose': 0, '--quiet': 0, '--max-jobs': 1, '--cores': 1, '--log-format': 1, '--keep-going': 0,
  '--keep-failed': 0, '--fallback': 0, '--repair': 0, '--option': 2, '--builders': 1, '--include': 1,
  '--print-build-logs': 0, '--show-trace': 0, '--offline': 0, '--no-net': 0, '--accept-flake-config': 0,
  '--refresh': 0, '--impure': 0, '--recreate-lock-file': 0, '--no-update-lock-file': 0, '--no-write-lock-file': 0,
  '--no-registries': 0, '--commit-lock-file': 0, '--update-input': 1, '--override-input': 2,
  '--no-build-output': 0, '--no-link': 0, '--use-substitutes': 0, '--substitute-on-destination': 0, '--help': 0,
  '--debug': 0, '--file': 1, '--attr': 1, '--flake': 1, '--no-flake': 0, '--install-bootloader': 0,
  '--install-grub': 0, '--profile-name': 1, '--specialisation': 1, '--rollback': 0, '--store-path': 1,
  '--upgrade': 0, '--upgrade-all': 0, '--json': 0, '--ask-sudo-password': 0, '--sudo': 0, '--run0': 0,
  '--use-remote-sudo': 0, '--no-ssh-tty': 0, '--no-reexec': 0, '--fast': 0, '--build-host': 1,
  '--target-host': 1, '--no-build-nix': 0, '--image-variant': 1, '--diff': 0,
};
const NG_SHORT = ['-v', '-j', '-k', '-K', '-I', '-L', '-Q', '-s', '-h', '-f', '-A', '-F', '-p', '-c', '-S'];
const REJECTED_BY_BASH_ERA = ['--no-reexec', '--sudo', '--store-path', '--elevate', '--ask-sudo-password', '-S', '-F', '-h', '--debug', '--diff', '--run0'];
const longFlagsIn = (text: string) => new Set(text.match(/(?<![\w-])--[a-z][a-z0-9-]*/g));

describe('bash-era nixos-rebuild stand-in: flags', () => {
  it.each(REJECTED_BY_BASH_ERA)('refuses %s like nixpkgs\' nixos-rebuild.sh and runs nothing', (flag) => {
    const args = ['switch', '--flake', FLAKE, '--target-host', TARGET, flag, ...(flag === '--store-path' ? [TOPLEVEL] : [])];
    const r = run(BASH_ERA, args);
    expect(r.stderr).toBe(`${BASH_ERA}: unknown option \`${flag}'\n`);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.calls).toEqual([]);
  });

  it('refuses --opt=value, which the real case statement does not know', () => {
    const r = run(BASH_ERA, ['switch', `--flake=${FLAKE}`]);
    expect([r.status, r.stderr, r.calls]).toEqual([1, `${BASH_ERA}: unknown option \`--flake=${FLAKE}'\n`, []]);
  });

  it('--help is a manual page listing exactly the accepted options, each of which is accepted', () => {
    const r = run(BASH_ERA, ['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^nixos-rebuild\(8\)\s+System Manager's Manual\s+nixos-rebuild\(8\)$/i);
    expect(r.stdout).toMatch(/^SYNOPSIS$/m);
    expect(r.stdout).not.toMatch(/usage:/);
    expect([...longFlagsIn(r.stdout)].sort()).toEqual(Object.keys(BASH_ERA_FLAGS).sort());
    for (const flag of REJECTED_BY_BASH_ERA.filter((f) => f.startsWith('--'))) expect(longFlagsIn(r.stdout)).not.toContain(flag);
    // Every listed option parses: the real script handles --help when it reaches it.
    for (const [flag, values] of Object.entries(BASH_ERA_FLAGS)) {
      const probe = run(BASH_ERA, ['build', flag, ...Array.from({ length: values }, (_, i) => `value${i}`), '--help']);
      const stderr = flag === '--install-grub' ? `${BASH_ERA}: --install-grub deprecated, use --install-bootloader instead\n` : '';
      expect({ flag, status: probe.status, stderr: probe.stderr }).toEqual({ flag, status: 0, stderr });
    }
    for (const flag of BASH_ERA_SHORT) {
      const values = ['-f', '-A', '-I', '-j', '-p', '-c'].includes(flag) ? ['value'] : [];
      expect({ flag, status: run(BASH_ERA, ['build', flag, ...values, '--help']).status }).toEqual({ flag, status: 0 });
    }
  });

  it('shows the manual (exit 0) without an action or with two, as `exec man nixos-rebuild` does', () => {
    for (const args of [['--flake', FLAKE], ['switch', 'boot']]) {
      const r = run(BASH_ERA, args);
      expect([r.status, r.stdout.split('\n')[0], r.calls]).toEqual([0, expect.stringMatching(/^nixos-rebuild\(8\)/), []]);
    }
  });
});

describe('ng nixos-rebuild stand-in: flags', () => {
  it.each([['--foo'], ['--elevate'], ['--foo', '--bar']])('refuses %s argparse-style with exit 2 and runs nothing', (...bad) => {
    const r = run(NG, ['switch', '--flake', FLAKE, ...bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^usage: nixos-rebuild \[--verbose\] /);
    expect(r.stderr.endsWith(`\nnixos-rebuild: error: unrecognized arguments: ${bad.join(' ')}\n`)).toBe(true);
    expect(r.stdout).toBe('');
    expect(r.calls).toEqual([]);
  });

  it.each([
    [['bogus'], "argument action: invalid choice: 'bogus' (choose from 'switch', 'boot', 'test', 'build', 'edit', 'repl', 'dry-build', 'dry-run', 'dry-activate', 'build-image', 'build-vm', 'build-vm-with-bootloader', 'list-generations')"],
    [['switch', '--target-host'], 'argument --target-host: expected one argument'],
    [['switch', '--target-host', '--sudo'], 'argument --target-host: expected one argument'],
    [['switch', '--option', 'x'], 'argument --option: expected 2 arguments'],
    [['switch', '--sudo=yes'], "argument --sudo: ignored explicit argument 'yes'"],
    [['switch', '--store-path', TOPLEVEL, '--flake', FLAKE], '--store-path cannot be used with --flake, --file, or --attr'],
    [['build', '--store-path', TOPLEVEL], "--store-path cannot be used with 'build'"],
    [['switch', '--store-path', TOPLEVEL, '--rollback'], '--store-path and --rollback are mutually exclusive'],
    [['switch', '--sudo', '--run0', '--flake', FLAKE], '--run0 and --sudo are mutually exclusive'],
    [['repl', '--target-host', TARGET], "--target-host/--build-host is not supported with 'repl'"],
  ])('%j → parser.error, exit 2', (args, message) => {
    const r = run(NG, args);
    expect([r.status, r.stderr.split('\n').at(-2), r.calls]).toEqual([2, `nixos-rebuild: error: ${message}`, []]);
  });

  it('--help is argparse help listing exactly the accepted options, each of which is accepted', () => {
    const r = run(NG, ['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: nixos-rebuild \[--verbose\] /);
    expect(r.stdout).toMatch(/^options:$/m);
    expect(r.stdout).toContain('--no-reexec');
    expect(r.stdout).toContain('--store-path PATH');
    expect([...longFlagsIn(r.stdout)].sort()).toEqual(Object.keys(NG_FLAGS).sort());
    expect(run(NG, ['-h']).stdout).toBe(r.stdout);
    for (const [flag, values] of Object.entries(NG_FLAGS)) {
      const probe = run(NG, [flag, ...Array.from({ length: values }, (_, i) => `value${i}`), '--help']);
      expect({ flag, status: probe.status, stderr: probe.stderr }).toEqual({ flag, status: 0, stderr: '' });
    }
    for (const flag of NG_SHORT) {
      const values = ['-j', '-I', '-f', '-A', '-F', '-p', '-c'].includes(flag) ? ['value'] : [];
      expect({ flag, status: run(NG, [flag, ...values, '--help']).status }).toEqual({ flag, status: 0 });
    }
  });
});

describe('re-exec of the target\'s nixos-rebuild', () => {
  const args = ['switch', '--flake', FLAKE, '--target-host', TARGET, '--use-substitutes'];
  const evalCall = ['nix', ...EXPERIMENTAL, 'eval', '--raw', `${ATTR}.config`, '--apply', 'c: c.nixpkgs.hostPlatform.system or ""'];

  it('bash-era without --fast dies with Exec format error (126) for a foreign target, before any ssh', () => {
    const r = run(BASH_ERA, [...args, '--use-remote-sudo'], { FAKE_TARGET_SYSTEM: FOREIGN_SYSTEM });
    expect(r.status).toBe(126);
    expect(r.stderr).toMatch(/: cannot execute binary file: Exec format error\n$/);
    expect(r.stdout).toBe('');
    expect(r.calls).toEqual([evalCall]);
  });

  it('ng without --no-reexec dies with [Errno 8] Exec format error for a foreign target, before any ssh', () => {
    const r = run(NG, [...args, '--sudo'], { FAKE_TARGET_SYSTEM: FOREIGN_SYSTEM });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\[Errno 8\] Exec format error: '.*\/bin\/nixos-rebuild'\n$/);
    expect(r.calls).toEqual([evalCall]);
  });

  it('a missing hostPlatform counts as aarch64-linux, and says so', () => {
    const r = run(BASH_ERA, args, { FAKE_TARGET_SYSTEM: '' });
    expect(r.stderr).toContain('hostPlatform.system is missing; assuming aarch64-linux');
    expect(r.status).toBe(LOCAL_SYSTEM === 'aarch64-linux' ? 0 : 126);
  });

  it('ng with NIXOS_REBUILD_STANDIN_NG_REEXEC=fallback warns and carries on, as the newest ng', () => {
    const r = run(NG, args, { FAKE_TARGET_SYSTEM: FOREIGN_SYSTEM, NIXOS_REBUILD_STANDIN_NG_REEXEC: 'fallback' });
    expect(r.stderr).toContain('warning: could not re-exec in a newer version of nixos-rebuild, using current version');
    expect(r.status).toBe(0);
    expect(r.calls[0]).toEqual(evalCall);
    expect(r.calls.length).toBeGreaterThan(3);
  });

  it('a target of this machine\'s system re-execs fine: the run carries on', () => {
    const r = run(BASH_ERA, args);
    expect(r.status).toBe(0);
    expect(r.calls[0]).toEqual(evalCall);
    expect(r.calls[1]?.slice(0, 5)).toEqual(['nix', ...EXPERIMENTAL, 'build', `${ATTR}.config.system.build.toplevel`]);
  });

  it('build and dry-activate never re-exec; --fast / --no-reexec / --store-path skip it', () => {
    for (const [cmd, a] of [
      [BASH_ERA, ['build', '--flake', FLAKE]], [BASH_ERA, ['switch', '--fast', '--flake', FLAKE, '--target-host', TARGET]],
      [NG, ['dry-activate', '--flake', FLAKE, '--target-host', TARGET]], [NG, ['switch', '--no-reexec', '--flake', FLAKE, '--target-host', TARGET]],
      [NG, ['switch', '--store-path', TOPLEVEL, '--target-host', TARGET]],
    ] as const) {
      const r = run(cmd, [...a], { FAKE_TARGET_SYSTEM: FOREIGN_SYSTEM, NIXOS_REBUILD_I_UNDERSTAND_THE_CONSEQUENCES_PLEASE_BREAK_MY_SYSTEM: '' });
      expect({ a, status: r.status, eval: r.calls.some((c) => c.includes('eval')) }).toEqual({ a, status: 0, eval: false });
    }
  });
});

describe('bash-era command sequence', () => {
  const profile = ['nix-env', '-p', '/nix/var/nix/profiles/system', '--set', TOPLEVEL];
  const build = ['nix', ...EXPERIMENTAL, 'build', `${ATTR}.config.system.build.toplevel`, '--out-link', expect.stringMatching(/\/nixos-rebuild\.\w+\/result$/)];

  it('switch to a non-root target with --use-remote-sudo: build, copy, sudo profile, sudo systemd-run probe and activation', () => {
    const r = run(BASH_ERA, ['switch', '--flake', FLAKE, '--target-host', TARGET, '--use-substitutes', '--use-remote-sudo', '--fast']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${TOPLEVEL}\n`);
    expect(r.stderr).toContain('building the system configuration...');
    expect(r.calls).toEqual([
      build,
      ['nix-copy-closure', '-s', '--to', TARGET, TOPLEVEL],
      ['ssh', ...SSHOPTS, '-t', TARGET, 'sudo', ...profile],
      ['ssh', ...SSHOPTS, '-t', TARGET, 'sudo', ...BASH_ERA_SYSTEMD_RUN, 'true'],
      ['ssh', ...SSHOPTS, '-t', TARGET, 'sudo', ...BASH_ERA_SYSTEMD_RUN, `${TOPLEVEL}/bin/switch-to-configuration`, 'switch'],
    ]);
    expect(r.copySshOpts).toBe(SSHOPTS.join(' '));
    expect(r.sshStdin).toBe('');
  });

  it('without --use-remote-sudo nothing is prefixed with sudo; --no-ssh-tty drops -t; boot sets the profile and runs the boot step', () => {
    const r = run(BASH_ERA, ['boot', '--flake', FLAKE, '--target-host', TARGET, '--fast', '--no-ssh-tty']);
    expect(r.status).toBe(0);
    expect(r.calls).toEqual([
      build,
      ['nix-copy-closure', '--to', TARGET, TOPLEVEL],
      ['ssh', ...SSHOPTS, TARGET, ...profile],
      ['ssh', ...SSHOPTS, TARGET, ...BASH_ERA_SYSTEMD_RUN, 'true'],
      ['ssh', ...SSHOPTS, TARGET, ...BASH_ERA_SYSTEMD_RUN, `${TOPLEVEL}/bin/switch-to-configuration`, 'boot'],
    ]);
    expect(r.calls.flat()).not.toContain('sudo');
  });

  it('test: no profile; without a working systemd-run it falls back to env -i', () => {
    const r = run(BASH_ERA, ['test', '--flake', FLAKE, '--target-host', TARGET, '--fast', '--use-remote-sudo'], { FAKE_PROBE_RC: '1', LOCALE_ARCHIVE: '/lib/locale/locale-archive' });
    expect(r.status).toBe(0);
    expect(r.calls.slice(2)).toEqual([
      ['ssh', ...SSHOPTS, '-t', TARGET, 'sudo', ...BASH_ERA_SYSTEMD_RUN, 'true'],
      ['ssh', ...SSHOPTS, '-t', TARGET, 'sudo', 'env', '-i', 'LOCALE_ARCHIVE=/lib/locale/locale-archive', 'NIXOS_INSTALL_BOOTLOADER=', `${TOPLEVEL}/bin/switch-to-configuration`, 'test'],
    ]);
  });

  it('a failed activation: the real script\'s warning and exit 1', () => {
    const r = run(BASH_ERA, ['switch', '--flake', FLAKE, '--target-host', TARGET, '--fast'], { FAKE_ACTIVATE_RC: '4' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/warning: error\(s\) occurred while switching to the new configuration\n$/);
  });

  it('a failed build or copy stops with that step\'s status, nothing after it runs', () => {
    const b = run(BASH_ERA, ['switch', '--flake', FLAKE, '--target-host', TARGET, '--fast'], { FAKE_BUILD_RC: '100' });
    expect([b.status, b.stdout, b.calls.map((c) => c[0])]).toEqual([100, '', ['nix']]);
    const c = run(BASH_ERA, ['switch', '--flake', FLAKE, '--target-host', TARGET, '--fast'], { FAKE_COPY_RC: '3' });
    expect([c.status, c.calls.map((x) => x[0])]).toEqual([3, ['nix', 'nix-copy-closure']]);
  });

  it('passes nix flags to the build, and the copy flags to nix-copy-closure, in the real order', () => {
    const r = run(BASH_ERA, ['switch', '--flake', FLAKE, '--target-host', TARGET, '--fast', '-L', '--max-jobs', '0', '--option', 'narinfo-cache-negative-ttl', '0', '-s', '--show-trace']);
    expect(r.calls[0]).toEqual(['nix', ...EXPERIMENTAL, 'build', `${ATTR}.config.system.build.toplevel`, '-L', '--max-jobs', '0', '--option', 'narinfo-cache-negative-ttl', '0', '--show-trace', '--out-link', expect.any(String)]);
    expect(r.calls[1]).toEqual(['nix-copy-closure', '--max-jobs', '0', '--option', 'narinfo-cache-negative-ttl', '0', '-s', '--to', TARGET, TOPLEVEL]);
  });

  it('flakes only: a clear error without --flake; activation needs --target-host', () => {
    const a = run(BASH_ERA, ['switch', '--target-host', TARGET]);
    expect([a.status, a.stderr, a.calls]).toEqual([1, expect.stringContaining('only flake configurations are supported'), []]);
    const b = run(BASH_ERA, ['switch', '--flake', FLAKE, '--fast']);
    expect([b.status, b.stderr, b.calls]).toEqual([1, expect.stringContaining('needs --target-host'), []]);
  });
});

describe('ng command sequence', () => {
  const build = ['nix', ...EXPERIMENTAL, 'build', '--print-out-paths', `${ATTR}.config.system.build.toplevel`, '--no-link'];
  const host = (...cmd: string[]) => ['ssh', ...SSHOPTS, TARGET, '--', ...cmd];

  it('switch to a non-root target with --sudo: build, copy, nixos-version check, sudo profile, sudo systemd-run activation', () => {
    const r = run(NG, ['switch', '--flake', FLAKE, '--target-host', TARGET, '--use-substitutes', '--sudo', '--no-reexec']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${TOPLEVEL}\n`);
    expect(r.calls).toEqual([
      build,
      ['nix-copy-closure', '-s', '--to', TARGET, TOPLEVEL],
      host('test', '-f', `${TOPLEVEL}/nixos-version`),
      host('sudo', 'nix-env', '-p', '/nix/var/nix/profiles/system', '--set', TOPLEVEL),
      host('sudo', ...NG_SYSTEMD_RUN, `${TOPLEVEL}/bin/switch-to-configuration`, 'switch'),
    ]);
    expect(r.stderr).toContain(`Done. The new configuration is ${TOPLEVEL}`);
  });

  it('--use-remote-sudo and --fast are accepted with ng\'s deprecation warnings', () => {
    const r = run(NG, ['test', '--flake', FLAKE, '--target-host', TARGET, '--use-remote-sudo', '--fast']);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('nixos-rebuild: warning: --use-remote-sudo is deprecated, use --sudo instead\n');
    expect(r.stderr).toContain('nixos-rebuild: warning: --fast is deprecated, use --no-reexec instead\n');
    expect(r.calls).toEqual([
      build,
      ['nix-copy-closure', '--to', TARGET, TOPLEVEL],
      host('sudo', ...NG_SYSTEMD_RUN, `${TOPLEVEL}/bin/switch-to-configuration`, 'test'),
    ]);
  });

  it('--store-path: no evaluation, no build, no re-exec; copy and activate', () => {
    const r = run(NG, ['boot', '--store-path', TOPLEVEL, '--target-host', TARGET, '--sudo'], { FAKE_TARGET_SYSTEM: FOREIGN_SYSTEM });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${TOPLEVEL}\n`);
    expect(r.calls).toEqual([
      ['nix-copy-closure', '--to', TARGET, TOPLEVEL],
      host('test', '-f', `${TOPLEVEL}/nixos-version`),
      host('sudo', 'nix-env', '-p', '/nix/var/nix/profiles/system', '--set', TOPLEVEL),
      host('sudo', ...NG_SYSTEMD_RUN, `${TOPLEVEL}/bin/switch-to-configuration`, 'boot'),
    ]);
  });

  it('--ask-sudo-password feeds one stdin line to sudo --prompt= --stdin, and never waits for one', () => {
    const r = run(NG, ['test', '--store-path', TOPLEVEL, '--target-host', TARGET, '--ask-sudo-password'], {}, 'hunter2\n');
    expect(r.status).toBe(0);
    expect(r.calls.at(-1)).toEqual(host('sudo', '--prompt=', '--stdin', ...NG_SYSTEMD_RUN, `${TOPLEVEL}/bin/switch-to-configuration`, 'test'));
    expect(r.sshStdin).toBe('hunter2\n');
    const none = run(NG, ['test', '--store-path', TOPLEVEL, '--target-host', TARGET, '-S'], {}, '');
    expect([none.status, none.calls]).toEqual([1, []]);
    expect(none.stderr).toContain('no password line on stdin');
  });

  it('a failed activation exits with its status and ng\'s CalledProcessError message', () => {
    const r = run(NG, ['switch', '--store-path', TOPLEVEL, '--target-host', TARGET, '--sudo'], { FAKE_ACTIVATE_RC: '4' });
    expect(r.status).toBe(4);
    expect(r.stderr).toContain('error: while running command with remote sudo, did you forget to use --ask-sudo-password?');
    expect(r.stderr).toMatch(/Command 'ssh -o BatchMode=yes -o ConnectTimeout=5 deploy@10\.213\.77\.11 -- sudo systemd-run .* switch' returned non-zero exit status 4\.\n$/);
  });

  it('a toplevel without nixos-version is refused before the profile is touched, as recent ng does', () => {
    const r = run(NG, ['switch', '--store-path', TOPLEVEL, '--target-host', TARGET, '--sudo'], { FAKE_TEST_F_RC: '1' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('your NixOS configuration path seems to be missing essential files.');
    expect(r.calls.map((c) => c.slice(c.indexOf('--') + 1, c.indexOf('--') + 2)[0] ?? c[0])).toEqual(['nix-copy-closure', 'test']);
  });

  it('a failed build exits with nix\'s status; nothing is copied', () => {
    const r = run(NG, ['switch', '--flake', FLAKE, '--target-host', TARGET, '--no-reexec'], { FAKE_BUILD_RC: '1' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`Command 'nix --extra-experimental-features 'nix-command flakes' build --print-out-paths`);
    expect(r.calls.map((c) => c[0])).toEqual(['nix']);
  });

  it('flakes or --store-path only', () => {
    const r = run(NG, ['switch', '--target-host', TARGET]);
    expect([r.status, r.calls]).toEqual([1, []]);
    expect(r.stderr).toContain('only flake configurations are supported');
  });
});
