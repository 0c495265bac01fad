/**
 * The doctor against the real lab: green when healthy, and red with the
 * fleet document's hint for each problem injected here — the cache down,
 * the cache signing with another key, a builder's key not authorized, the
 * GC-root directory missing. Each test heals the lab in `finally`: the other
 * end-to-end files share it. Also the deploy's side of issue 6: it refuses
 * an untrusted narinfo unless --allow-unsigned, and pins what it deployed
 * even when the post-build hook (which only pins what it builds) does not.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/fixtures.ts';
import { asHawk, coordinator, fault, hostAddress, hostPath, inventoryPath, lab, labPath, labSkipReason, newGeneration, runOnCoordinator, runScript } from './lab.ts';

interface DoctorCheck {
  id: string;
  status: 'pass' | 'warn' | 'fail' | 'skip';
  summary: string;
  details: string[];
  hints: string[];
}

/** scripts/doctor.ts as a user runs it on the coordinator, against the lab inventory. */
async function doctor(args: readonly string[] = []) {
  const result = await runOnCoordinator([join(repoRoot, 'node_modules/.bin/tsx'), join(repoRoot, 'scripts/doctor.ts'), '--inventory', inventoryPath(), '--json', ...args]);
  let json: { exitCode: number; checks: DoctorCheck[] };
  try {
    json = JSON.parse(result.stdout);
  } catch {
    throw new Error(`doctor printed no JSON (exit ${result.exitCode}):\n${result.stdout}\n${result.stderr}`);
  }
  const byId = Object.fromEntries(json.checks.map((c) => [c.id, c]));
  return { exitCode: result.exitCode, checks: json.checks, byId, statuses: Object.fromEntries(json.checks.map((c) => [c.id, c.status])) };
}

const ALL_CHECKS = ['cache-info', 'cache-key', 'builder:opi01', 'builder:opi02', 'builder:opi03', 'target:opi01', 'target:opi02', 'target:opi03', 'gc-roots', 'local-build', 'nixos-rebuild'];
/** Every check passing except the ones given. */
const allPassBut = (others: Record<string, string>) => Object.fromEntries(ALL_CHECKS.map((id) => [id, others[id] ?? 'pass']));

function labInventory(): { cache: { url: string; gcRootDir: string }; hosts: Record<string, { builder: { sshKey: string } }> } {
  return JSON.parse(readFileSync(inventoryPath(), 'utf8'));
}

async function hawk(argv: readonly string[]): Promise<string> {
  const result = await asHawk(argv);
  if (result.exitCode !== 0) throw new Error(`${argv.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

/**
 * Replaces the cache's signing key with a new key of the same name, as if the
 * cache host's key had been regenerated while the inventory kept the old one:
 * the lab cache (like Harmonia) signs every narinfo as it serves it, with the
 * key file it reads each time. Returns the undo.
 */
async function resignCacheWithAnotherKey(): Promise<() => void> {
  const secretKey = labPath('hawk/cache-priv-key.pem');
  const work = labPath('doctor-resign');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  copyFileSync(secretKey, join(work, 'original-sk'));
  const restore = () => {
    copyFileSync(join(work, 'original-sk'), secretKey);
    rmSync(work, { recursive: true, force: true });
  };
  try {
    const keyName = readFileSync(labPath('hawk/cache-pub-key.pem'), 'utf8').split(':')[0]!;
    await hawk(['nix-store', '--generate-binary-cache-key', keyName, join(work, 'sk'), join(work, 'pk')]);
    copyFileSync(join(work, 'sk'), secretKey);
  } catch (error) {
    restore();
    throw error;
  }
  return restore;
}

describe.skipIf(!lab)(`doctor in the lab${lab ? '' : ` (skipped: ${labSkipReason})`}`, () => {
  let toplevels: Record<string, string>;
  beforeAll(async () => {
    // A lab in use: every host deployed, the GC roots there.
    await newGeneration('doctor');
    const run = await runScript('deploy-all', ['--json']);
    expect(run.exitCode, run.stderr).toBe(0);
    toplevels = Object.fromEntries(run.json.report.hosts.map((h: { name: string; toplevel: string }) => [h.name, h.toplevel]));
  });

  it('is green on the healthy lab, JSON and text, also as just nix doctor', async () => {
    const run = await doctor();
    expect(run.exitCode).toBe(0);
    expect(run.statuses).toEqual(allPassBut({}));
    expect(run.byId['cache-key']!.summary).toMatch(/ is signed by lab-hawk-1$/);
    expect(run.byId['target:opi02']!.summary).toContain(toplevels.opi02);
    expect(run.byId['builder:opi01']!.summary).toBe('nix-store (Nix) 2.26.3; builds aarch64-linux through extra-platforms');
    expect(run.byId['local-build']!.summary).toMatch(/^system x86_64-linux, extra-platforms /);

    const text = await runOnCoordinator([join(repoRoot, 'node_modules/.bin/just'), 'nix', 'doctor', '--inventory', inventoryPath()]);
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout.split('\n').filter((line) => /^[✔✖⚠↓] /.test(line)).map((line) => line[0])).toEqual(ALL_CHECKS.map(() => '✔'));
    expect(text.stdout).toMatch(/doctor: 11 passed, 0 failed, 0 warned — healthy\s*$/);
  });

  it('cache down: names "Harmonia down" and skips the key check', async () => {
    await fault('cache-down');
    try {
      const run = await doctor();
      expect(run.exitCode).toBe(1);
      expect(run.statuses).toEqual(allPassBut({ 'cache-info': 'fail', 'cache-key': 'skip' }));
      expect(run.byId['cache-info']!.summary).toMatch(/nix-cache-info failed: ECONNREFUSED/);
      expect(run.byId['cache-info']!.hints[0]).toBe(`Harmonia down: curl ${labInventory().cache.url}/nix-cache-info should answer "StoreDir: /nix/store"`);
    } finally {
      await fault('cache-up');
    }
  });

  it('cache signed by another key: names "key mismatch"; the deploy refuses it unless --allow-unsigned', async () => {
    const restore = await resignCacheWithAnotherKey();
    try {
      const run = await doctor();
      expect(run.exitCode).toBe(1);
      expect(run.statuses).toEqual(allPassBut({ 'cache-key': 'fail' }));
      expect(run.byId['cache-key']!.summary).toMatch(/^key mismatch: the signature by lab-hawk-1 does not verify — /);
      expect(run.byId['cache-key']!.hints[0]).toMatch(/^Key mismatch: the inventory's cache.publicKey must match the cache's signing key/);

      // Refused already in preflight, on a path pinned on hawk: before any build.
      const refused = await runScript('deploy', ['opi03', '--json']);
      expect(refused.exitCode).toBe(1);
      expect(refused.json.error.message).toMatch(/^key mismatch: the signature by lab-hawk-1 does not verify — the cache serves \/nix\/store\/\S+ with Sig: lab-hawk-1:\S+; cache.publicKey is lab-hawk-1:/);
      expect(refused.json.report.stages.find((s: { name: string }) => s.name === 'preflight').outcome).toBe('failed');
      expect(refused.json.report.stages.find((s: { name: string }) => s.name === 'deploy').outcome).toBe('not-started');

      // Accepted, loudly, by preflight and again by the cache wait (the toplevel is already cached, under the wrong signature).
      const allowed = await runScript('deploy', ['opi03', '--allow-unsigned', '--json']);
      expect(allowed.exitCode, allowed.stderr).toBe(0);
      expect(allowed.stderr).toContain('WARNING: --allow-unsigned');
      expect(allowed.json.report.warnings).toHaveLength(2);
      expect(allowed.json.report.warnings[0]).toMatch(/^key mismatch: the signature by lab-hawk-1 does not verify — .* — accepted because of --allow-unsigned$/);
      expect(allowed.json.report.warnings[1]).toBe(
        `opi03: ${toplevels.opi03}: key mismatch: the signature by lab-hawk-1 does not verify — accepted because of --allow-unsigned`,
      );
    } finally {
      restore();
    }
    expect((await doctor()).exitCode).toBe(0);
  });

  it('builder key not authorized: names the SSH key issue for that builder only', async () => {
    const authorized = hostPath('opi02', 'var/lib/nix-builder/.ssh/authorized_keys');
    const original = readFileSync(authorized, 'utf8');
    const builderKey = readFileSync(labPath('ssh/builder_key.pub'), 'utf8').trim();
    writeFileSync(authorized, original.split('\n').filter((line) => line.trim() !== builderKey).join('\n'));
    try {
      const run = await doctor();
      expect(run.exitCode).toBe(1);
      // The deploy key still works: the target check passes, only the builder fails.
      expect(run.statuses).toEqual(allPassBut({ 'builder:opi02': 'fail' }));
      const builder = run.byId['builder:opi02']!;
      expect(builder.summary).toBe('ssh exited with 255');
      expect(builder.details.join('\n')).toContain('Permission denied (publickey)');
      expect(builder.hints[0]).toBe(
        `SSH key issue: test with ssh -i ${labInventory().hosts.opi02!.builder.sshKey} nix-builder@${hostAddress('opi02')} — the key must be in nix-builder's authorized_keys there`,
      );
    } finally {
      writeFileSync(authorized, original);
    }
  });

  it('GC-root directory missing: names "Missing GC root"; the key is still checked through a target\'s system', async () => {
    const dir = labInventory().cache.gcRootDir;
    // Moved, not deleted, and still under gcroots/: the roots keep protecting their paths meanwhile.
    const moved = `${dir}.doctor-moved`;
    renameSync(dir, moved);
    try {
      const run = await doctor();
      expect(run.exitCode).toBe(1);
      expect(run.statuses).toEqual(allPassBut({ 'gc-roots': 'fail' }));
      expect(run.byId['gc-roots']!.summary).toBe(`${dir} does not exist`);
      expect(run.byId['gc-roots']!.hints[0]).toMatch(new RegExp(`^Missing GC root: check ${dir}/ for the expected symlink`));
      expect(run.byId['cache-key']!.summary).toMatch(/\(current system of opi01\) is signed by lab-hawk-1$/);
    } finally {
      if (!existsSync(dir)) renameSync(moved, dir);
      else {
        for (const name of readdirSync(moved)) if (!existsSync(join(dir, name))) renameSync(join(moved, name), join(dir, name));
        rmSync(moved, { recursive: true, force: true });
      }
    }
  });

  it('the deploy re-pins a toplevel whose root is gone, though nothing is built (so the post-build hook never runs)', async () => {
    const dir = labInventory().cache.gcRootDir;
    const root = join(dir, basename(toplevels.opi03!));
    expect(readlinkSync(root)).toBe(toplevels.opi03);
    rmSync(root);
    try {
      const run = await runScript('deploy', ['opi03', '--json']);
      expect(run.exitCode, run.stderr).toBe(0);
      expect(run.json.report.builds).toEqual([]);
      expect(readlinkSync(root)).toBe(toplevels.opi03);
      expect(run.json.report.pinnedRoots).toEqual([{ storePath: toplevels.opi03, root, on: coordinator() === 'hawk' ? 'local' : `avl@${hostAddress('hawk')}` }]);
    } finally {
      if (!existsSync(root)) symlinkSync(toplevels.opi03!, root);
    }
  });
});

