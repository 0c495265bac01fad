/**
 * --goal build: the plan (its stages, no deploy part, no target checks, no
 * lock), the command line that asks for it, its dry-run, and a run of it
 * with the recording executor (nothing on a target, the report's hosts built).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parseCliArgs } from '../../lib/cli/args.ts';
import { runDeployCli } from '../../lib/cli/deploy.ts';
import type { Io } from '../../lib/cli/io.ts';
import { planDeploy } from '../../lib/plan/assemble.ts';
import { dryRunJson, renderPlan } from '../../lib/plan/render.ts';
import { deployStages, OPERATION_STAGES } from '../../lib/plan/types.ts';
import { renderMarkdown } from '../../lib/report/render/markdown.ts';
import { renderReport } from '../../lib/report/render/text.ts';
import { fixture, fleetInventory, repoRoot } from '../helpers/fixtures.ts';
import { FLEET_HOSTS, runPipeline } from '../helpers/pipeline.ts';

const validate = new Ajv2020({ strict: false }).compile(JSON.parse(readFileSync(`${repoRoot}/schemas/dry-run.schema.json`, 'utf8')));

describe('planning --goal build', () => {
  const inventory = fleetInventory();
  const build = planDeploy(inventory, FLEET_HOSTS, { goal: 'build', onCoordinator: false, localUser: 'avl' });
  const deploy = planDeploy(inventory, FLEET_HOSTS, { goal: 'switch', onCoordinator: false, localUser: 'avl' });

  it('stops after the cache wait: its stages have no deploy, a deploy\'s have all', () => {
    expect(build.stages).toEqual(['preflight', 'evaluate', 'seed-build', 'wait-for-cache', 'report']);
    expect(deploy.stages).toEqual([...OPERATION_STAGES.deploy]);
    expect(deployStages('boot')).toEqual([...OPERATION_STAGES.deploy]);
  });

  it('has no deploy part, no target checks, no nixos-rebuild and no lock', () => {
    expect(build.deploy.hosts).toEqual({});
    expect(build.preflight.targets).toEqual([]);
    expect(build.preflight.rebuild).toBeUndefined();
    expect(build.lock).toBeUndefined();
    // Nothing in the plan logs in to a target (the seed is asked as builder, hawk as coordinator).
    expect(JSON.stringify(build)).not.toMatch(/deploy@/);
    expect(JSON.stringify(deploy)).toMatch(/deploy@opi01/);
  });

  it('builds, copies, pins and waits for the cache exactly as a deploy does', () => {
    for (const part of ['evaluate', 'builds', 'copyToCoordinator', 'pin', 'waitForCache'] as const) {
      expect(build[part], part).toEqual(deploy[part] as unknown);
    }
    expect(build.preflight.nixTrust).toEqual(deploy.preflight.nixTrust);
    expect(build.preflight.gcRootDirWritable).toEqual(deploy.preflight.gcRootDirWritable);
    expect(build.preflight.cacheKey).toEqual(deploy.preflight.cacheKey);
  });

  it('prints a plan that stops after the cache wait, and JSON valid against the published schema', () => {
    const text = renderPlan(build);
    expect(text).toMatch(/^plan: build opi01, opi02, opi03 from \., seed opi03 .*: build, pin and wait for the cache, then stop — no host is deployed$/m);
    expect(text).toContain('no deploy lock: a build changes no host');
    expect(text).toContain('no target is asked');
    expect(text).toContain('4. wait for cache');
    expect(text).toContain('the run stops after the cache wait: nothing is deployed, no host is touched');
    expect(text).not.toMatch(/nixos-rebuild|5\. deploy|sudo -n/);
    const json = JSON.parse(dryRunJson(build));
    expect(validate(json), JSON.stringify(validate.errors)).toBe(true);
    expect(json.plan.stages).toEqual(['preflight', 'evaluate', 'seed-build', 'wait-for-cache', 'report']);
    expect(json.plan.goal).toBe('build');
  });
});

describe('--goal build on the command line', () => {
  it('maps to a deploy plan with goal build, for deploy and deploy-all with the usual selectors', () => {
    expect(parseCliArgs('deploy-all', ['--goal', 'build', '--on', '@k3s', '--exclude', 'opi02'])).toMatchObject({ goal: 'build', selector: { on: ['@k3s'], exclude: ['opi02'] } });
    expect(parseCliArgs('deploy', ['--goal', 'build', 'opi03'])).toMatchObject({ goal: 'build' });
  });

  it('rollback refuses it, and a build refuses the options only a deploy stage or its lock use', () => {
    expect(() => parseCliArgs('rollback', ['--goal', 'build', 'opi01'])).toThrow('--goal build: a rollback builds nothing');
    expect(() => parseCliArgs('deploy-all', ['--goal', 'build', '--rolling'])).toThrow('--goal build deploys nothing and takes no deploy lock: --rolling does not apply');
    expect(() => parseCliArgs('deploy-all', ['--goal', 'build', '--force-unlock', '--no-diff'])).toThrow('--force-unlock, --no-diff do not apply');
    expect(() => parseCliArgs('deploy-all', ['--goal', 'build', '--dry-run', '--diff'])).toThrow('--diff does not apply');
    expect(() => parseCliArgs('deploy-all', ['--goal', 'build', '--canary', 'opi01'])).toThrow('--goal build deploys nothing: --canary does not apply');
  });

  it('exits 2 for rollback --goal build, and prints the build plan with --dry-run (no nixos-rebuild probed)', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), isTTY: false, env: { CI: 'true' } };
    const inventory = ['--inventory', join(repoRoot, 'hosts.json')];
    expect(await runDeployCli('rollback', [...inventory, '--goal', 'build', 'opi01'], io)).toBe(2);
    expect(err.join('\n')).toContain('a rollback builds nothing');
    expect(await runDeployCli('deploy-all', [...inventory, '--goal', 'build', '--dry-run'], io)).toBe(0);
    expect(out.join('\n')).toContain('then stop — no host is deployed');
    expect(out.join('\n')).not.toContain('nixos-rebuild on this machine');
  });
});

describe('running a --goal build plan', () => {
  it('builds, pins and waits for the cache, runs nothing on a target, takes no lock, and reports the hosts built', async () => {
    const { result, executor } = await runPipeline([], { plan: { goal: 'build' } });
    expect(result.error).toBeUndefined();
    const argvs = executor.calls.map((c) => c.argv.join(' '));
    expect(argvs.filter((a) => /deploy@|nixos-rebuild|avalanche-lock|avalanche-probe/.test(a))).toEqual([]);
    expect(argvs.some((a) => a.includes('nix-builder@opi03'))).toBe(true);
    const { report } = result;
    expect(report.goal).toBe('build');
    expect(report.verdict).toBeUndefined();
    expect(report.stages.map((s) => [s.name, s.outcome])).toEqual([
      ['preflight', 'success'], ['evaluate', 'success'], ['seed-build', 'success'], ['wait-for-cache', 'success'],
    ]);
    expect(report.hosts.map((h) => [h.name, h.state])).toEqual(FLEET_HOSTS.map((h) => [h, 'built']));
    expect(report.builds).toMatchObject([{ drvPath: expect.stringContaining('linux-6.1-opi'), machine: 'ssh://nix-builder@opi03.internal' }]);
    const text = renderReport(report);
    expect(text).toContain('built (pinned, served signed; host untouched)');
    expect(text).toMatch(/^built 1 derivation \(seed build \d+\.\ds\)$/m);
    expect(text).toMatch(/linux-6\.1-opi {2}ssh:\/\/nix-builder@opi03\.internal/);
    expect(text).toMatch(/— built, pinned and served; nothing deployed$/);
    expect(text).not.toMatch(/deployed \(|baseline/);
    const markdown = renderMarkdown(report);
    expect(markdown).toContain('| linux-6.1-opi | ssh://nix-builder@opi03.internal |');
    expect(markdown).toContain('| ↳ opi01 | — | built (pinned, served signed; host untouched) |');
  });

  it('hosts whose toplevels the cache did not serve signed are not started, never built', async () => {
    const { result } = await runPipeline([], { plan: { goal: 'build' }, narinfo: fixture('narinfo/unsigned.narinfo') });
    expect(result.outcome).toBe('failed');
    expect(result.report.stages.find((s) => s.name === 'wait-for-cache')?.outcome).toBe('failed');
    expect(result.report.hosts.map((h) => h.state)).toEqual(['not-started', 'not-started', 'not-started']);
  });
});
