/**
 * rollback (scripts/rollback.ts): its plan (the deploy's lock, target
 * preflight and safety steps around a switch to a generation the host has),
 * the choice of that generation, what `--run` reverts, the command line,
 * and a run through its stages with a recording executor.
 */
import { mkdtemp } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { runDeployCli } from '../../lib/cli/deploy.ts';
import type { Io } from '../../lib/cli/io.ts';
import { revertible } from '../../lib/cli/rollback.ts';
import { StageError, UsageError } from '../../lib/errors.ts';
import { planDeploy } from '../../lib/plan/assemble.ts';
import { fillCommand, previousGenerationValues } from '../../lib/plan/placeholders.ts';
import { dryRunJson, renderPlan } from '../../lib/plan/render.ts';
import { planRollback, type RollbackPlanOptions } from '../../lib/plan/rollback.ts';
import { OPERATION_STAGES, type RollbackPlan, rollbackPlanSchema, type RollbackTarget } from '../../lib/plan/types.ts';
import { LIST_GENERATIONS, parseGenerations } from '../../lib/remote/generations.ts';
import { SWITCH_TO_GENERATION } from '../../lib/remote/scripts.ts';
import { type HostEntry, type RunReport, writeReport } from '../../lib/report/report.ts';
import { runPlan } from '../../lib/run/run.ts';
import { chooseGeneration } from '../../lib/stages/resolve.ts';
import { fleetInventory, repoRoot, fleetInventoryPath } from '../helpers/fixtures.ts';
import { asRun, FLEET_HOSTS, fleetResponders, isCommand, runValues } from '../helpers/pipeline.ts';
import { RecordingExecutor, remoteWords, type Responder, when } from '../helpers/recording-executor.ts';
import { sampleReport } from '../helpers/sample-report.ts';
import { describeRun, renderReport } from '../../lib/report/render/text.ts';

const PROFILE = '/nix/var/nix/profiles/system';
const A = '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-opi01-24.11';
const B = '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-nixos-system-opi01-24.11';
const C = '/nix/store/cccccccccccccccccccccccccccccccc-nixos-system-opi01-24.11';
const D = '/nix/store/dddddddddddddddddddddddddddddddd-nixos-system-opi01-24.11';

/**
 * What lib/remote/generations.ts LIST_GENERATIONS prints on a host deployed
 * four times (9 and 10 are the same system), running and booted on 12, the
 * profile at `profile` (links in the shell's glob order).
 */
function listing(profile = 12, generations: readonly (readonly [number, string])[] = [[10, A], [12, C], [9, A], [11, B]]): string {
  return [
    'format=avalanche-generations-1',
    'profile-name=system',
    `profile-link=system-${profile}-link`,
    `current-system=${C}`,
    `booted-system=${C}`,
    ...generations.map(([n, toplevel]) => `generation=${n} ${1764400000 + n * 60} ${toplevel}`),
    '',
  ].join('\n');
}

const schema = JSON.parse(readFileSync(`${repoRoot}/schemas/dry-run.schema.json`, 'utf8'));
const validateDryRun = new Ajv2020({ strict: false }).compile(schema);

const previous: RollbackTarget = { kind: 'previous' };

function planFleetRollback(options: Partial<RollbackPlanOptions> = {}, hosts: readonly string[] = FLEET_HOSTS): RollbackPlan {
  return planRollback(fleetInventory(), hosts, { to: () => previous, onCoordinator: true, ...options });
}

describe('planning a rollback of the fleet (non-root deploy user)', () => {
  const targets: Record<string, RollbackTarget> = {
    opi01: previous,
    opi02: { kind: 'generation', number: 7 },
    opi03: { kind: 'toplevel', toplevel: B, run: '2026-01-02T03-04-05-000Z' },
  };
  const plan = planFleetRollback({ to: (host) => targets[host]! });

  it('is a rollback plan of its own: the rollback stages, nothing to evaluate, build or wait for', () => {
    expect(plan.operation).toBe('rollback');
    expect(plan.goal).toBe('switch');
    expect(plan.hosts).toEqual(FLEET_HOSTS);
    expect(OPERATION_STAGES.rollback).toEqual(['preflight', 'resolve', 'deploy', 'report']);
    for (const stage of OPERATION_STAGES.rollback.filter((s) => s !== 'report')) expect(plan).toHaveProperty(stage);
    for (const deployOnly of ['evaluate', 'seeds', 'pin', 'waitForCache', 'flake', 'baselineMinutes']) expect(plan).not.toHaveProperty(deployOnly);
    expect(rollbackPlanSchema.parse(plan)).toEqual(plan);
  });

  it('preflight: every target logs in and gets root with sudo -n, nothing else', () => {
    expect(Object.keys(plan.preflight)).toEqual(['targets']);
    expect(plan.preflight.targets.map((t) => [t.host, t.escalates, t.command.argv.slice(-3)])).toEqual(
      FLEET_HOSTS.map((host) => [host, true, [`deploy@${host}.internal`, '--', 'sudo -n -- true']]),
    );
  });

  it('resolve: lists each host\'s generations as the deploy user (no sudo), with the target asked for', () => {
    expect(Object.keys(plan.resolve.hosts)).toEqual(FLEET_HOSTS);
    for (const host of FLEET_HOSTS) {
      const { list, to } = plan.resolve.hosts[host]!;
      expect(list.argv.at(-3)).toBe(`deploy@${host}.internal`);
      expect(remoteWords(list.argv)).toEqual(['sh', '-c', LIST_GENERATIONS, 'avalanche-generations', PROFILE, '/run/current-system', '/run/booted-system']);
      expect(list.timeoutMs).toBeGreaterThan(0);
      expect(to).toEqual(targets[host]);
    }
  });

  it('deploy: the activation is SWITCH_TO_GENERATION as root, with the chosen toplevel, the profile and the goal', () => {
    for (const host of FLEET_HOSTS) {
      const { rebuild } = plan.deploy.hosts[host]!;
      expect(rebuild.argv.at(-3)).toBe(`deploy@${host}.internal`);
      expect(remoteWords(rebuild.argv)).toEqual(['sudo', '-n', '--', 'sh', '-c', SWITCH_TO_GENERATION, 'avalanche-switch', PROFILE, `{{generation:${host}}}`, `{{toplevel:${host}}}`, 'switch']);
      expect(rebuild.env).toBeUndefined();
      expect(rebuild.timeoutMs).toBe(60 * 60_000);
    }
    const test = planFleetRollback({ goal: 'test' });
    expect(remoteWords(test.deploy.hosts.opi02!.rebuild.argv).slice(-4)).toEqual([PROFILE, '{{generation:opi02}}', '{{toplevel:opi02}}', 'test']);
  });

  it('wraps the switch in the deploy\'s own steps: the same probe, watchdog, health checks, confirmation, rollback and lock', () => {
    const deploy = planDeploy(fleetInventory(), FLEET_HOSTS, { goal: 'switch', onCoordinator: true });
    for (const host of FLEET_HOSTS) {
      const steps = plan.deploy.hosts[host]!;
      for (const step of ['arm', 'health', 'confirm', 'rollback', 'closeConnection'] as const) expect(steps[step], `${host} ${step}`).toBeDefined();
      const { rebuild: _switch, ...rest } = steps;
      const { rebuild: _rebuild, ...deployed } = deploy.deploy.hosts[host]!;
      expect(rest).toEqual(deployed);
    }
    expect(plan.lock).toEqual(deploy.lock);
    // The same safety choices (watchdog, rollback, confirmation timeout); only the pace differs (no seed wave).
    const { concurrency: _c, hosts: _h, ...safety } = plan.deploy;
    const { concurrency: _d, hosts: _g, ...deploySafety } = deploy.deploy;
    expect(safety).toEqual(deploySafety);
  });

  it('--no-magic-rollback drops the watchdog and its confirmation, not the rollback; boot arms nothing and checks no health', () => {
    const noMagic = planFleetRollback({ magicRollback: false });
    expect(noMagic.deploy.magicRollback).toBe(false);
    for (const host of Object.values(noMagic.deploy.hosts)) {
      expect(host.arm).toBeUndefined();
      expect(host.confirm).toBeUndefined();
      expect(host.rollback).toBeDefined();
      expect(host.health).toBeDefined();
    }
    const boot = planFleetRollback({ goal: 'boot' }).deploy.hosts.opi01!;
    expect([boot.arm, boot.confirm, boot.health]).toEqual([undefined, undefined, undefined]);
    expect(boot.rollback).toBeDefined();
    expect(planFleetRollback({ rollback: false }).deploy.hosts.opi01!.rollback).toBeUndefined();
  });

  it('goes in one wave by default (all at once, or --concurrency), in waves of the batch size with --rolling', () => {
    expect(plan.waves).toEqual([FLEET_HOSTS]);
    expect(plan.deploy).toMatchObject({ concurrency: 3, rolling: false });
    const paced = planFleetRollback({ concurrency: 2 });
    expect(paced.waves).toEqual([FLEET_HOSTS]);
    expect(paced.deploy.concurrency).toBe(2);
    const rolling = planFleetRollback({ rolling: true, batchSize: 2, keepGoing: true });
    expect(rolling.waves).toEqual([['opi01', 'opi02'], ['opi03']]);
    expect(rolling.deploy).toMatchObject({ concurrency: 2, rolling: true, keepGoing: true });
    expect(planFleetRollback({ rolling: true }).waves).toEqual([['opi01'], ['opi02'], ['opi03']]);
  });

  it('--dry-run --json: valid against schemas/dry-run.schema.json, byte-identical twice, the plan itself', () => {
    const once = dryRunJson(plan);
    const twice = dryRunJson(planFleetRollback({ to: (host) => targets[host]! }));
    expect(twice).toBe(once);
    const parsed = JSON.parse(once);
    expect(validateDryRun(parsed), JSON.stringify(validateDryRun.errors)).toBe(true);
    expect(parsed).toEqual({ dryRun: true, plan });
    // The schema knows a rollback's fields: a deploy's in it is refused.
    expect(validateDryRun({ ...parsed, plan: { ...parsed.plan, flake: '.' } })).toBe(false);
  });

  it('--dry-run in words: the resolve stage and where each host goes back to', () => {
    const text = renderPlan(plan);
    expect(text).toContain('plan: roll back opi01, opi02, opi03 (switch)');
    expect(text).toContain('nothing is evaluated or built');
    expect(text).toMatch(/^2\. resolve: read each host's generations and choose the one it goes back to$/m);
    expect(text).toContain("  opi01: the generation before the profile's (as nixos-rebuild --rollback)");
    expect(text).toContain('  opi02: generation 7');
    expect(text).toContain(`  opi03: the newest generation of ${B} (what run 2026-01-02T03-04-05-000Z found there)`);
    expect(text).toMatch(/^3\. switch \(switch; at most 3 at a time\)$/m);
    expect(text).toContain('    switch to the chosen generation');
    expect(text).not.toContain('nixos-rebuild switch --flake');
    expect(text).not.toMatch(/^\d\. (evaluate|seed build|wait for cache)/m);
  });
});

describe('chooseGeneration', () => {
  const host = parseGenerations(listing());

  it('previous: the highest-numbered generation below the profile\'s', () => {
    expect(chooseGeneration('opi01', host, previous)).toMatchObject({ number: 11, toplevel: B });
    // Below the profile's, not below the newest: a profile at 11 goes to 10, although 12 exists.
    expect(chooseGeneration('opi01', parseGenerations(listing(11)), previous)).toMatchObject({ number: 10, toplevel: A });
  });

  it('previous, with none before the profile\'s or no profile: a StageError naming the generations', () => {
    const first = () => chooseGeneration('opi01', parseGenerations(listing(9)), previous);
    expect(first).toThrow(StageError);
    expect(first).toThrow('opi01: no generation before 9 to go back to (generations: 9, 10, 11, 12)');
    const never = parseGenerations('format=avalanche-generations-1\nprofile-name=system\nprofile-link=\ncurrent-system=\nbooted-system=\n');
    expect(() => chooseGeneration('opi02', never, previous)).toThrow('opi02: no system profile generation to go back from (generations: none)');
  });

  it('generation n: that one; a missing one names what the host has', () => {
    expect(chooseGeneration('opi01', host, { kind: 'generation', number: 9 })).toMatchObject({ number: 9, toplevel: A });
    expect(chooseGeneration('opi01', host, { kind: 'generation', number: 12 })).toMatchObject({ number: 12, toplevel: C });
    const missing = () => chooseGeneration('opi01', host, { kind: 'generation', number: 13 });
    expect(missing).toThrow(StageError);
    expect(missing).toThrow('opi01: has no generation 13 (generations: 9, 10, 11, 12)');
  });

  it('toplevel: the newest generation with that toplevel; none names the run', () => {
    expect(chooseGeneration('opi01', host, { kind: 'toplevel', toplevel: A, run: 'r0' })).toMatchObject({ number: 10, toplevel: A });
    expect(chooseGeneration('opi01', host, { kind: 'toplevel', toplevel: B, run: 'r0' })).toMatchObject({ number: 11 });
    const gone = () => chooseGeneration('opi01', host, { kind: 'toplevel', toplevel: D, run: '2026-01-02T03-04-05-000Z' });
    expect(gone).toThrow(StageError);
    expect(gone).toThrow(`opi01: no generation is ${D}, which run 2026-01-02T03-04-05-000Z found there`);
    expect(gone).toThrow('generations: 9, 10, 11, 12');
  });
});

/** A report of a run on these hosts (sample-report's times and stages). */
function runOf(hosts: readonly HostEntry[], overrides: Partial<RunReport> = {}): RunReport {
  return sampleReport({ hosts, ...overrides });
}

const deployed = (name: string, effect: HostEntry['effect'], previousToplevel?: string): HostEntry => ({
  name,
  state: 'deployed',
  generation: effect === 'checked' ? 'previous' : 'new',
  effect,
  ...(previousToplevel ? { previousToplevel, previousGeneration: 4 } : {}),
});

describe('revertible: what rollback --run goes back to', () => {
  it('deployed hosts whose goal changed something, failed and interrupted ones not back on their previous generation', () => {
    const run = runOf([
      deployed('switched', 'switched', A),
      deployed('boot-default', 'boot-default', B),
      deployed('activated', 'activated', C),
      deployed('unchanged', 'unchanged', A),
      deployed('checked', 'checked', A),
      { name: 'failed-unknown', state: 'failed', generation: 'unknown', previousToplevel: D },
      { name: 'failed-new', state: 'failed', generation: 'new', previousToplevel: A },
      { name: 'failed-previous', state: 'failed', generation: 'previous', previousToplevel: A },
      { name: 'interrupted-unknown', state: 'interrupted', generation: 'unknown', previousToplevel: B },
      { name: 'interrupted-previous', state: 'interrupted', generation: 'previous', previousToplevel: B },
      { name: 'rolled-back', state: 'rolled-back', generation: 'previous', previousToplevel: C },
      { name: 'not-started', state: 'not-started', generation: 'previous' },
    ]);
    expect(revertible(run)).toEqual({
      switched: A,
      'boot-default': B,
      activated: C,
      'failed-unknown': D,
      'failed-new': A,
      'interrupted-unknown': B,
    });
  });

  it('a changed host whose previous system the report lacks: a UsageError that says why (first deploy, or not recorded)', () => {
    const run = runOf([deployed('opi01', 'switched'), { ...deployed('opi02', 'switched'), firstDeploy: true }, deployed('opi03', 'switched', A)]);
    const unrecorded = () => revertible(run);
    expect(unrecorded).toThrow(UsageError);
    expect(unrecorded).toThrow(`run ${run.id}: no system to go back to for opi01 (the report does not record what it ran before), opi02 (a first deploy: it had no system before)`);
    expect(unrecorded).toThrow('--exclude them, or roll them back by generation (--to)');
  });

  it('a run that changed nothing: a UsageError, naming each host\'s state', () => {
    const run = runOf([deployed('opi01', 'unchanged', A), { name: 'opi02', state: 'rolled-back', generation: 'previous', previousToplevel: B }, { name: 'opi03', state: 'not-started', generation: 'previous' }]);
    const nothing = () => revertible(run);
    expect(nothing).toThrow(UsageError);
    expect(nothing).toThrow(`run ${run.id} changed no host (opi01: deployed, opi02: rolled-back, opi03: not-started): nothing to revert`);
  });
});

async function cli(command: 'deploy' | 'deploy-all' | 'rollback', args: readonly string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), isTTY: false, env: { CI: 'true' } };
  const code = await runDeployCli(command, ['--inventory', fleetInventoryPath(), ...args], io);
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

/** `rollback --dry-run --json …`'s plan; fails the test unless it exits 0. */
async function plannedRollback(args: readonly string[]): Promise<RollbackPlan> {
  const { code, stdout, stderr } = await cli('rollback', ['--dry-run', '--json', ...args]);
  expect(code, stderr).toBe(0);
  const parsed = JSON.parse(stdout);
  expect(validateDryRun(parsed), JSON.stringify(validateDryRun.errors)).toBe(true);
  return parsed.plan;
}

/** A report directory holding `reports`, as runs write them. */
async function reportDir(...reports: readonly RunReport[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rollback-runs-'));
  for (const report of reports) await writeReport(dir, report);
  return dir;
}

describe('rollback command line', () => {
  it('--help: exit 0, with --to and --run', async () => {
    const { code, stdout } = await cli('rollback', ['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: npx tsx scripts/rollback.ts <host|@tag|glob…> [--to <n>] [options]');
    expect(stdout).toContain('--to <n>');
    expect(stdout).toContain('--run <id>');
    expect(stdout).toContain('--goal <goal>        switch | boot | test');
  });

  it('exits 2 for what cannot be a rollback', async () => {
    const usage = (message: string) => ({ code: 2, stdout: '', stderr: expect.stringContaining(message) });
    expect(await cli('rollback', [])).toMatchObject(usage('name the hosts to roll back'));
    expect(await cli('rollback', ['--exclude', 'opi01'])).toMatchObject(usage('name the hosts to roll back'));
    expect(await cli('rollback', ['opi01', '--to', '3', '--run', 'latest'])).toMatchObject(usage('--to and --run: give one'));
    expect(await cli('rollback', ['opi01', '--to', '0'])).toMatchObject(usage("--to must be a generation number ≥ 1 (got '0')"));
    expect(await cli('rollback', ['opi01', '--to', 'x'])).toMatchObject(usage("--to must be a generation number ≥ 1 (got 'x')"));
    expect(await cli('rollback', ['opi01', '--to', '2.5'])).toMatchObject(usage("--to must be a generation number ≥ 1 (got '2.5')"));
    expect(await cli('rollback', ['opi01', '--goal', 'dry-activate'])).toMatchObject(usage("--goal must be one of switch, boot, test (got 'dry-activate')"));
    expect(await cli('rollback', ['--run', 'a b'])).toMatchObject(usage("--run 'a b': a run id"));
    expect(await cli('rollback', ['opi09'])).toMatchObject(usage("unknown host 'opi09'"));
  });

  it('exits 2 for the flags of a build: a rollback builds nothing', async () => {
    for (const flag of [['--flake', '.'], ['--seed', 'opi03'], ['--allow-unsigned'], ['--tag', 'k3s']]) {
      const { code, stderr } = await cli('rollback', ['opi01', ...flag]);
      expect(code, flag.join(' ')).toBe(2);
      expect(stderr).toContain(`${flag[0]}: a rollback builds nothing`);
    }
  });

  it('exits 2 for --to and --run on a deploy', async () => {
    expect(await cli('deploy', ['opi01', '--to', '3'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--to belongs to rollback') });
    expect(await cli('rollback', ['opi01', '--canary', 'opi01'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--canary belongs to deploy and deploy-all') });
    expect(await cli('deploy', ['opi01', '--run', 'latest'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--run belongs to rollback') });
    expect(await cli('deploy-all', ['--to', '3'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--to belongs to rollback') });
  });

  it('--dry-run --json opi01 --to 3: the rollback plan, opi01 going to generation 3', async () => {
    const plan = await plannedRollback(['opi01', '--to', '3']);
    expect(plan.operation).toBe('rollback');
    expect(plan.hosts).toEqual(['opi01']);
    expect(plan.resolve.hosts).toEqual({ opi01: { list: expect.any(Object), to: { kind: 'generation', number: 3 } } });
    expect((await plannedRollback(['@k3s', '--exclude', 'opi02'])).resolve.hosts).toEqual({
      opi01: { list: expect.any(Object), to: previous },
      opi03: { list: expect.any(Object), to: previous },
    });
    const rolling = await plannedRollback(['--on', 'opi0*', '--rolling', '--batch-size', '2', '--goal', 'test', '--no-magic-rollback']);
    expect(rolling).toMatchObject({ goal: 'test', waves: [['opi01', 'opi02'], ['opi03']], deploy: { concurrency: 2, rolling: true, magicRollback: false } });
    expect(remoteWords(rolling.deploy.hosts.opi03!.rebuild.argv).at(-1)).toBe('test');
  });

  it('--dry-run in words, running nothing', async () => {
    const { code, stdout } = await cli('rollback', ['--dry-run', 'opi02', '--to', '3']);
    expect(code).toBe(0);
    expect(stdout).toContain('  opi02: generation 3');
    expect(stdout).toMatch(/^4\. report/m);
  });

  describe('--run <id>', () => {
    const changed = runOf(
      [
        deployed('opi01', 'switched', A),
        deployed('opi02', 'unchanged', B),
        { name: 'opi03', state: 'failed', generation: 'unknown', previousToplevel: C, previousGeneration: 7, note: 'health check failed; not rolled back (--no-rollback)' },
      ],
      { startedAt: '2026-01-02T03:04:05.000Z' },
    );
    const later = runOf([deployed('opi01', 'unchanged', A)], { startedAt: '2026-01-03T00:00:00.000Z' });

    it('reverts the hosts the run changed, each to the system it ran before; --exclude and names narrow', async () => {
      const dir = await reportDir(changed, later);
      const plan = await plannedRollback(['--report-dir', dir, '--run', changed.id]);
      expect(plan.hosts).toEqual(['opi01', 'opi03']);
      expect(plan.resolve.hosts.opi01!.to).toEqual({ kind: 'toplevel', toplevel: A, run: changed.id });
      expect(plan.resolve.hosts.opi03!.to).toEqual({ kind: 'toplevel', toplevel: C, run: changed.id });
      // A unique prefix of the id is the run.
      expect((await plannedRollback(['--report-dir', dir, '--run', '2026-01-02'])).hosts).toEqual(['opi01', 'opi03']);
      expect((await plannedRollback(['--report-dir', dir, '--run', changed.id, '--exclude', 'opi03'])).hosts).toEqual(['opi01']);
      expect((await plannedRollback(['--report-dir', dir, '--run', changed.id, 'opi03'])).hosts).toEqual(['opi03']);
      // `latest` is the newest run that changed a host: a later one that changed none (stopped by the lock, say) is skipped.
      expect((await plannedRollback(['--report-dir', dir, '--run', 'latest'])).resolve.hosts.opi01!.to).toEqual({ kind: 'toplevel', toplevel: A, run: changed.id });
      const nothing = await cli('rollback', ['--dry-run', '--report-dir', await reportDir(later), '--run', 'latest']);
      expect(nothing).toMatchObject({ code: 2, stderr: expect.stringContaining(`no run in`) });
      expect(nothing.stderr).toContain(`changed a host (the latest, ${later.id}, changed none)`);
      // A selection first: a host it leaves out needs no recorded previous system.
      const nothingSelected = await cli('rollback', ['--dry-run', '--report-dir', dir, '--run', changed.id, '--on', 'opi02']);
      expect(nothingSelected).toMatchObject({ code: 2, stderr: expect.stringContaining(`none of the hosts it changed (opi01, opi03) is selected`) });
    });

    it('a first deploy the selection leaves out does not stop the rest of the run from going back', async () => {
      const withFirst = runOf(
        [{ name: 'opi01', state: 'deployed', generation: 'new', effect: 'switched', firstDeploy: true }, deployed('opi03', 'switched', C)],
        { startedAt: '2026-01-04T00:00:00.000Z' },
      );
      const dir = await reportDir(withFirst);
      const refused = await cli('rollback', ['--dry-run', '--report-dir', dir, '--run', withFirst.id]);
      expect(refused).toMatchObject({ code: 2, stderr: expect.stringContaining('no system to go back to for opi01 (a first deploy: it had no system before); --exclude them') });
      expect((await plannedRollback(['--report-dir', dir, '--run', withFirst.id, '--exclude', 'opi01'])).hosts).toEqual(['opi03']);
      expect((await plannedRollback(['--report-dir', dir, '--run', withFirst.id, '--on', 'opi03'])).hosts).toEqual(['opi03']);
    });

    it('exits 2 for a run it cannot find, naming the latest runs', async () => {
      const dir = await reportDir(changed, later);
      const { code, stderr } = await cli('rollback', ['--dry-run', '--report-dir', dir, '--run', '2027']);
      expect(code).toBe(2);
      expect(stderr).toContain(`--run 2027: no run '2027' in ${dir}; latest: ${later.id}, ${changed.id}`);
      const empty = await reportDir();
      expect(await cli('rollback', ['--dry-run', '--report-dir', empty, '--run', 'latest'])).toMatchObject({ code: 2, stderr: expect.stringContaining('no run reports in') });
    });

    it('exits 2 when the selection leaves none of the run\'s hosts, or the run changed a host the inventory lacks', async () => {
      const dir = await reportDir(changed);
      expect(await cli('rollback', ['--dry-run', '--report-dir', dir, '--run', changed.id, '--exclude', 'opi01,opi03'])).toMatchObject({
        code: 2,
        stderr: expect.stringContaining(`--run ${changed.id}: none of the hosts it changed (opi01, opi03) is selected`),
      });
      const elsewhere = runOf([deployed('opi09', 'switched', A)], { startedAt: '2026-01-04T00:00:00.000Z' });
      const other = await reportDir(elsewhere);
      expect(await cli('rollback', ['--dry-run', '--report-dir', other, '--run', 'latest'])).toMatchObject({
        code: 2,
        stderr: expect.stringContaining(`--run ${elsewhere.id} changed opi09, which`),
      });
    });
  });
});

/** What each fleet host's probe (PROBE_GENERATION) reads: its profile at generation 12, running C, as the listing says. */
const probedAt12: Responder = when(['avalanche-probe'], { stdout: `system-12-link\n${C}\n${C}\n` });
/** The deploy's rollback, having put generation 12 back. */
const restored12: Responder = when(['avalanche-rollback'], { stdout: `outcome=restored\nprofile-link=system-12-link\nprofile-path=${C}\ncurrent-system=${C}\n` });
const listed: Responder = when(['avalanche-generations'], { stdout: listing() });

/**
 * Runs a rollback plan of `hosts` through its stages (runPlan, silent, run
 * id r1, no lock) with the fleet's recorded answers: `responders` first,
 * then the generation listing above, the probe at generation 12, and the
 * deploy pipeline's usual answers (test/helpers/pipeline.ts fleetResponders).
 */
async function runRollback(responders: readonly Responder[], options: Partial<RollbackPlanOptions> = {}, hosts: readonly string[] = ['opi01']) {
  // Health checks that pass at once (ssh answers) and no settle window, as the deploy pipeline tests have.
  const inventory = fleetInventory((json) => {
    json.health = { systemState: 'skip', retries: 1, intervalSeconds: 0, settleSeconds: 0 };
  });
  const plan = planRollback(inventory, hosts, { to: () => previous, onCoordinator: true, ...options });
  const executor = new RecordingExecutor([...responders, listed, probedAt12, restored12, ...fleetResponders]);
  const result = await runPlan(plan, { executor, signal: new AbortController().signal, renderer: 'silent', runId: 'r1' });
  return { plan, executor, result };
}

/** The calls whose remote command runs `script` (by the name it runs as: avalanche-switch, avalanche-generations, …). */
function callsOf(executor: RecordingExecutor, name: string): string[][] {
  return executor.calls.filter((call) => call.argv.at(-1)?.split(' ').includes(name)).map((call) => remoteWords(call.argv));
}

describe('a rollback run through its stages', () => {
  it('reads the generations, then switches to the previous one: the planned command, its toplevel filled in', async () => {
    const run = await runRollback([]);
    const { plan, executor, result } = run;
    expect(result.error).toBeUndefined();
    expect(result.outcome).toBe('success');
    const switches = executor.calls.filter((call) => call.argv.at(-1)?.split(' ').includes('avalanche-switch'));
    expect(switches).toHaveLength(1);
    expect(remoteWords(switches[0]!.argv)).toEqual(['sudo', '-n', '--', 'sh', '-c', SWITCH_TO_GENERATION, 'avalanche-switch', PROFILE, '11', B, 'switch']);
    expect(isCommand(switches[0]!, fillCommand(plan.deploy.hosts.opi01!.rebuild, { ...runValues(run), 'generation:opi01': '11' }))).toBe(true);
    // In order: the login with sudo, the listing, then the host's steps around the switch.
    const order = ['sudo -n -- true', 'avalanche-generations', 'avalanche-probe', 'avalanche-arm', 'avalanche-switch', 'avalanche-confirm'];
    const at = order.map((word) => executor.calls.findIndex((call) => call.argv.at(-1) === word || call.argv.at(-1)!.split(' ').includes(word)));
    expect(at.every((i) => i >= 0), JSON.stringify(at)).toBe(true);
    expect([...at].sort((x, y) => x - y)).toEqual(at);
    expect(callsOf(executor, 'avalanche-rollback')).toEqual([]);
  });

  it('goes to generation n with --to, and to the run\'s toplevel with --run', async () => {
    const toTen = await runRollback([], { to: () => ({ kind: 'generation', number: 10 }) });
    expect(callsOf(toTen.executor, 'avalanche-switch').map((words) => words.at(-2))).toEqual([A]);
    expect(toTen.result.report.hosts[0]).toMatchObject({ state: 'deployed', toplevel: A });
    const toRun = await runRollback([], { to: () => ({ kind: 'toplevel', toplevel: B, run: 'r0' }) });
    expect(callsOf(toRun.executor, 'avalanche-switch').map((words) => words.at(-2))).toEqual([B]);
  });

  it('reports a rollback: no verdict, its own stages, and what each host ran before', async () => {
    const { result } = await runRollback([], {}, ['opi01', 'opi02']);
    const { report } = result;
    expect(report.operation).toBe('rollback');
    expect(report.verdict).toBeUndefined();
    expect(report.seed).toBeUndefined();
    expect(report.flake).toBeUndefined();
    expect(report.stages.map((s) => [s.name, s.outcome])).toEqual([
      ['preflight', 'success'],
      ['resolve', 'success'],
      ['deploy', 'success'],
    ]);
    for (const host of report.hosts) {
      expect(host).toMatchObject({ state: 'deployed', generation: 'new', effect: 'switched', toplevel: B, previousToplevel: C, previousGeneration: 12 });
    }
  });

  it('a failing switch (exit 1) runs the host\'s rollback step: it ends rolled back to what it ran', async () => {
    const run = await runRollback([when(['avalanche-switch'], { exitCode: 1, stderr: 'switch-to-configuration failed' })]);
    const { plan, executor, result } = run;
    expect(result.outcome).toBe('failed');
    expect(result.error).toBeInstanceOf(StageError);
    expect(result.error!.message).toContain('opi01 failed');
    const rollback = fillCommand(plan.deploy.hosts.opi01!.rollback!, { ...runValues(run), ...previousGenerationValues({ profileLink: 'system-12-link', currentSystem: C }) });
    expect(executor.calls.filter((call) => isCommand(call, rollback))).toHaveLength(1);
    expect(callsOf(executor, 'avalanche-confirm')).toEqual([]);
    expect(result.report.hosts[0]).toMatchObject({ name: 'opi01', state: 'rolled-back', generation: 'previous', previousToplevel: C, previousGeneration: 12 });
    expect(result.report.hosts[0]!.note).toContain('switch to the chosen generation failed');
    expect(result.report.stages.map((s) => [s.name, s.outcome])).toEqual([
      ['preflight', 'success'],
      ['resolve', 'success'],
      ['deploy', 'failed'],
    ]);
  });

  it('a host without the generation asked for fails the resolve stage: no host is switched, the deploy stage never starts', async () => {
    // opi02 lacks generation 10: opi01, which has it, is not switched either.
    const short = when(['deploy@opi02.internal', 'avalanche-generations'], { stdout: listing(12, [[11, B], [12, C]]) });
    const { executor, result } = await runRollback([short], { to: () => ({ kind: 'generation', number: 10 }) }, ['opi01', 'opi02']);
    expect(result.outcome).toBe('failed');
    expect(result.error).toBeInstanceOf(StageError);
    expect(result.error!.message).toContain('opi02: has no generation 10 (generations: 11, 12)');
    expect(callsOf(executor, 'avalanche-generations')).toHaveLength(2);
    for (const step of ['avalanche-probe', 'avalanche-arm', 'avalanche-switch', 'avalanche-rollback']) expect(callsOf(executor, step), step).toEqual([]);
    expect(result.report.stages.map((s) => [s.name, s.outcome])).toEqual([
      ['preflight', 'success'],
      ['resolve', 'failed'],
      ['deploy', 'not-started'],
    ]);
    expect(result.report.hosts.map((h) => [h.name, h.state, h.generation])).toEqual([
      ['opi01', 'not-started', 'previous'],
      ['opi02', 'not-started', 'previous'],
    ]);
  });

  it('a listing that cannot be read fails the resolve stage, naming the host', async () => {
    const unreachable = when(['avalanche-generations'], { exitCode: 255, stderr: 'ssh: connect to host opi01.internal port 22: Connection refused' });
    const { executor, result } = await runRollback([unreachable]);
    expect(result.error!.message).toContain('opi01: cannot read its generations');
    expect(callsOf(executor, 'avalanche-switch')).toEqual([]);
    const garbled = await runRollback([when(['avalanche-generations'], { stdout: 'hello\n' })]);
    expect(garbled.result.error!.message).toContain('opi01: not a generation listing');
  });
});

describe('a rollback\'s report, as the terminal shows it', () => {
  it('says what was rolled back and where each host went, with no baseline verdict', () => {
    const { verdict: _verdict, seed: _seed, flake: _flake, ...deploy } = sampleReport();
    const text = renderReport({ ...deploy, operation: 'rollback', stages: deploy.stages.filter((s) => s.name === 'preflight' || s.name === 'deploy') });
    expect(text).toContain('switched back (to the chosen generation, boot default)');
    expect(text).not.toContain('new generation');
    expect(text).not.toContain('baseline');
    expect(text).toMatch(/^total \d/m);
    expect(describeRun({ ...deploy, operation: 'rollback' })).toContain('rollback (switch) of opi01, opi02, opi03');
  });
});
