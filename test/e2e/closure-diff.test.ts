/**
 * What a deploy will change, before it changes it (issue 13 #4), against the
 * lab's real hosts: the closure diff made on each target (Nix 2.26) between
 * the system it runs and the new one fetched from hawk's cache.
 */
import { describe, expect, it } from 'vitest';
import { activations, currentSystem, lab, labSkipReason, newGeneration, runScript } from './lab.ts';

const OPIS = ['opi01', 'opi02', 'opi03'];

describe.skipIf(!lab)(`closure diff${lab ? '' : ` (skipped: ${labSkipReason})`}`, () => {
  it('--dry-run --diff shows the kernel change between two generations and activates nothing; the deploy then reports it', async () => {
    await newGeneration('cd1', { kernelVersion: '6.1.41', packages: ['lab-tools-2.1'] });
    const first = await runScript('deploy-all', ['--json']);
    expect(first.exitCode, first.stderr).toBe(0);
    await newGeneration('cd2', { kernelVersion: '6.1.42', packages: ['lab-tools-2.2', 'lab-new-0.1'] });
    const running = OPIS.map((h) => currentSystem(h));
    const activationsBefore = OPIS.map((h) => activations(h).length);

    const dry = await runScript('deploy-all', ['--dry-run', '--diff']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('5. deploy');
    expect(dry.stdout).toContain('--diff: building and comparing; nothing is activated');
    expect(dry.stdout).toContain('closure changes:');
    for (const host of OPIS) expect(dry.stdout).toMatch(new RegExp(`  ${host}: \\d+ changed \\(linux 6\\.1\\.41 → 6\\.1\\.42\\), 1 added, [+-]`));
    expect(dry.stdout).toMatch(/linux\s+changed\s+6\.1\.41 → 6\.1\.42/);
    expect(dry.stdout).toMatch(/lab-tools\s+changed\s+2\.1 → 2\.2/);
    expect(dry.stdout).toMatch(/lab-new\s+added\s+∅ → 0\.1/);
    // Nothing activated: every host runs what it ran, no activation recorded.
    expect(OPIS.map((h) => currentSystem(h))).toEqual(running);
    expect(OPIS.map((h) => activations(h).length)).toEqual(activationsBefore);

    const json = await runScript('deploy', ['opi01', '--dry-run', '--diff', '--json']);
    expect(json.exitCode, json.stderr).toBe(0);
    expect(json.json).toMatchObject({ dryRun: true, plan: { operation: 'deploy', hosts: ['opi01'] } });
    expect(json.json.diffs.opi01).toMatchObject({ kind: 'diff', before: running[0] });
    expect(json.json.diffs.opi01.packages).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'linux', change: 'changed', before: ['6.1.41'], after: ['6.1.42'] })]));

    // The deploy makes the same diff before activating, and its report carries it.
    const deploy = await runScript('deploy-all', ['--json']);
    expect(deploy.exitCode, deploy.stderr).toBe(0);
    for (const host of deploy.json.report.hosts) {
      expect(host.diff).toMatchObject({ kind: 'diff' });
      expect(host.diff.packages).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'linux', before: ['6.1.41'], after: ['6.1.42'] })]));
      expect(host.diff.closureBytes.after).toBeGreaterThan(0);
    }
  });
});
