/**
 * The lab itself is what its README claims: systemd hosts with Nix daemons
 * and the fleet's users, two coordinators whose orchestrator user is not root
 * but trusted by their Nix daemon, and a cache serving hawk's own store,
 * signed. Checked with the real tools, as an admin would.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSignature, parseNarInfo, parsePublicKey } from '../../lib/cache/narinfo.ts';
import { ZxExecutor } from '../../lib/exec/zx-executor.ts';
import { repoRoot } from '../helpers/fixtures.ts';
import { asHawk, hostAddress, inHost, inventoryPath, lab, labPath, labSkipReason } from './lab.ts';

const executor = new ZxExecutor();
const OPIS = ['opi01', 'opi02', 'opi03'];
const CACHE = 'http://10.213.77.1:5000';

/** ssh from this machine as `user` with one of the lab keys, host keys checked. */
function ssh(user: string, host: string, key: 'deploy_key' | 'builder_key', command: string) {
  return executor.run({
    argv: ['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${labPath('ssh/known_hosts')}`,
      '-i', labPath('ssh', key), `${user}@${hostAddress(host)}`, command],
    env: {},
    timeoutMs: 30_000,
  });
}

/** argv as avl on a coordinator (whichever this project uses). */
function asAvlOn(coordinator: 'hawk' | 'calypso', argv: readonly string[]) {
  return executor.run({ argv: ['bash', join(repoRoot, 'test/lab/as-coordinator.sh'), coordinator, '--', ...argv], env: { CI: 'true' }, timeoutMs: 60_000 });
}

function ok(result: { exitCode: number | null; stdout: string; stderr: string }, what: string): string {
  if (result.exitCode !== 0) throw new Error(`${what} exited with ${result.exitCode}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

describe.skipIf(!lab)(`the lab${lab ? '' : ` (skipped: ${labSkipReason})`}`, () => {
  it('is one per machine: while this run holds the lab lock, another up.sh or down.sh waits and gives up, leaving this lab alone', async () => {
    for (const script of ['up.sh', 'down.sh']) {
      const other = await executor.run({ argv: ['bash', join(repoRoot, 'test/lab', script)], env: { ...lab!.env, LAB_LOCK_HELD: '', LAB_LOCK_WAIT: '1' }, timeoutMs: 30_000 });
      expect(other.exitCode, `${script}: ${other.stderr}`).not.toBe(0);
      expect(other.stderr).toMatch(/the lab lock \/run\/avalanche-lab\.lock is (still held after 1 s|held by a running lab session)/);
      expect((await inHost('opi01', ['true'])).exitCode, `${script} left the lab alone`).toBe(0);
    }
  });

  it.each(OPIS)('%s runs systemd (running), Nix 2.26 with the fleet\'s trusted users, sudo for deploy only', async (host) => {
    expect(ok(await inHost(host, ['systemctl', 'is-system-running']), 'is-system-running').trim()).toBe('running');
    expect(ok(await inHost(host, ['hostname']), 'hostname').trim()).toBe(host);
    expect(ok(await inHost(host, ['nix', '--version']), 'nix --version')).toMatch(/^nix \(Nix\) 2\.26\./);
    const trusted = ok(await inHost(host, ['nix', 'config', 'show', 'trusted-users']), 'nix config show');
    expect(trusted.trim().split(/\s+/).sort()).toEqual(['deploy', 'nix-builder', 'root']);
    expect(ok(await inHost(host, ['systemctl', 'is-active', 'nix-daemon.socket']), 'nix-daemon.socket').trim()).toBe('active');

    const deploy = await ssh('deploy', host, 'deploy_key', 'id -u && sudo -n true && echo sudo-ok && nix store info 2>&1');
    expect(deploy.exitCode, deploy.stderr).toBe(0);
    expect(deploy.stdout.split('\n')[0]).not.toBe('0');
    expect(deploy.stdout).toContain('sudo-ok');
    expect(deploy.stdout).toMatch(/Trusted: 1/);
    const builder = await ssh('nix-builder', host, 'builder_key', 'nix store info 2>&1 && sudo -n true');
    expect(builder.stdout).toMatch(/Trusted: 1/);
    expect(builder.exitCode).not.toBe(0); // no sudo for the builder
    expect(builder.stderr).toMatch(/password is required|not in the sudoers|may not run sudo/);
    // Each key opens only its own account.
    expect((await ssh('nix-builder', host, 'deploy_key', 'true')).exitCode).toBe(255);
    expect((await ssh('root', host, 'deploy_key', 'true')).exitCode).toBe(255);
  });

  it('deploy can start a unit with systemd-run through sudo -n, as nixos-rebuild-ng activates', async () => {
    const unit = `lab-probe-${randomBytes(4).toString('hex')}`;
    const run = await ssh('deploy', 'opi02', 'deploy_key',
      `sudo -n systemd-run --unit=${unit} --collect --quiet /bin/sleep 30 && systemctl is-active ${unit} && sudo -n systemctl stop ${unit}`);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe('active');
    const exitStatus = await ssh('deploy', 'opi02', 'deploy_key',
      'sudo -n systemd-run --collect --no-ask-password --pipe --quiet --service-type=exec --wait /bin/sh -c "exit 3"');
    expect(exitStatus.exitCode).toBe(3); // the unit's exit status comes back
  });

  it.each(['hawk', 'calypso'] as const)('on %s the orchestrator user is avl, not root, and trusted by its Nix daemon', async (coordinator) => {
    expect(ok(await asAvlOn(coordinator, ['id', '-un']), 'id').trim()).toBe('avl');
    expect(ok(await asAvlOn(coordinator, ['id', '-u']), 'id').trim()).not.toBe('0');
    // Only a trusted user may add signatures to the daemon's store.
    {
      const script = [
        'set -e',
        'cd "$(mktemp -d)"',
        `echo ${randomBytes(8).toString('hex')} > probe`,
        'p=$(nix-store --add probe)',
        'nix-store --generate-binary-cache-key probe-1 sk pk',
        'nix --extra-experimental-features nix-command store sign --key-file sk "$p"',
        'echo signed',
      ].join('\n');
      const signed = await asAvlOn(coordinator, ['sh', '-c', script]);
      expect(signed.exitCode, signed.stderr).toBe(0);
      expect(signed.stdout).toContain('signed');
    }
  });

  it('hawk runs Nix 2.8 behind its own daemon; it cannot build aarch64 itself', async () => {
    expect(ok(await asAvlOn('hawk', ['nix', '--version']), 'nix').trim()).toBe('nix (Nix) 2.8.0');
    const conf = readFileSync(labPath('hawk/etc-nix/nix.conf'), 'utf8');
    expect(conf).toMatch(/^trusted-users = root avl$/m);
    expect(conf).not.toMatch(/^extra-platforms/m);
    expect(conf).toMatch(/^builders = @/m);
  });

  it('calypso: node 20.19, Nix 2.26, the repository at the same path, no aarch64, reaches hawk over SSH as avl', async () => {
    expect(ok(await asAvlOn('calypso', ['hostname']), 'hostname').trim()).toBe('calypso');
    expect(ok(await asAvlOn('calypso', ['node', '--version']), 'node').trim()).toMatch(/^v20\.(19|[2-9]\d)\./);
    expect(ok(await asAvlOn('calypso', ['nix', '--version']), 'nix')).toMatch(/^nix \(Nix\) 2\.26\./);
    expect(ok(await asAvlOn('calypso', ['test', '-x', join(repoRoot, 'node_modules/.bin/tsx')]), 'tsx')).toBe('');
    const platforms = ok(await asAvlOn('calypso', ['nix', 'config', 'show', 'extra-platforms']), 'extra-platforms').trim();
    expect(platforms).not.toContain('aarch64-linux');
    const remote = ok(await asAvlOn('calypso', ['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', 'avl@10.213.77.1', 'id -un; hostname -I']), 'ssh avl@hawk');
    expect(remote.split('\n')[0]).toBe('avl');
    expect(remote).toContain('10.213.77.1');
    // Its own copies of the lab keys, readable by avl only.
    const modes = ok(await asAvlOn('calypso', ['stat', '-c', '%a %U', '/home/avl/.ssh/deploy_key', '/home/avl/.ssh/builder_key']), 'stat');
    expect(modes.trim().split('\n')).toEqual(['600 avl', '600 avl']);
    expect(ok(await inHost('calypso', ['stat', '-c', '%a %U', '/etc/nix/builder-key']), 'stat').trim()).toBe('600 root');
  });

  it('the cache serves a path that exists only in hawk\'s store, signed (real Nix verifies it, an opi substitutes it), and 404 otherwise', async () => {
    const dir = mkdtempSync(join(labPath('shared'), 'probe-'));
    chmodSync(dir, 0o755);
    const file = join(dir, 'only-on-hawk');
    writeFileSync(file, `${randomBytes(16).toString('hex')}\n`);
    chmodSync(file, 0o644);
    try {
      const path = ok(await asAvlOn('hawk', ['nix-store', '--add', file]), 'nix-store --add').trim();
      const hash = basename(path).slice(0, 32);
      const publicKey: string = JSON.parse(readFileSync(inventoryPath(), 'utf8')).cache.publicKey;

      const response = await fetch(`${CACHE}/${hash}.narinfo`);
      expect(response.status).toBe(200);
      const info = parseNarInfo(await response.text());
      expect(info.storePath).toBe(path);
      expect(checkSignature(info, [parsePublicKey(publicKey)])).toMatchObject({ ok: true });
      const verify = await asHawk(['nix', 'store', 'verify', '--store', CACHE, '--option', 'trusted-public-keys', publicKey, '--sigs-needed', '1', path]);
      expect(verify.exitCode, verify.stderr).toBe(0);

      expect((await inHost('opi01', ['test', '-e', path])).exitCode).not.toBe(0);
      const fetched = await inHost('opi01', ['nix-store', '-r', path]);
      expect(fetched.exitCode, fetched.stderr).toBe(0);
      expect(fetched.stderr).toContain(`from '${CACHE}'`);

      const missing = await fetch(`${CACHE}/${'0'.repeat(32)}.narinfo`);
      expect(missing.status).toBe(404);
      expect(await missing.text()).toBe('missed hash');
      expect((await fetch(`${CACHE}/nar/${'0'.repeat(32)}.nar`)).status).toBe(404);
      expect(await (await fetch(`${CACHE}/nix-cache-info`)).text()).toContain('StoreDir: /nix/store');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
