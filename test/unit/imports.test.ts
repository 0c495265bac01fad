import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The import graph's rules (`.dependency-cruiser.cjs`: the layers, no cycles, stages without the
 * planner, the report model below its renderings, lib/ without test/, nothing outside a layer), as
 * `npm run check:imports` checks them, run over the repository and over a seeded fixture tree.
 */
const root = fileURLToPath(new URL('../..', import.meta.url));
const config = join(root, '.dependency-cruiser.cjs');

async function check(baseDir: string, dirs: string[]): Promise<ICruiseResult> {
  const options = await extractDepcruiseOptions(config);
  const { output } = await cruise(dirs, { ...options, baseDir, outputType: 'json' });
  return typeof output === 'string' ? (JSON.parse(output) as ICruiseResult) : output;
}

/** One line a violation: the rule, and the import (or the cycle, or the module) it is about. */
function line(v: IViolation): string {
  if (v.cycle?.length) return `${v.rule.name}: ${[v.from, ...v.cycle.map((c) => c.name)].join(' → ')}`;
  return v.from === v.to ? `${v.rule.name}: ${v.from}` : `${v.rule.name}: ${v.from} → ${v.to}`;
}

const lines = (result: ICruiseResult): string[] => result.summary.violations.map(line).sort();

/** The violated rules' comments, once each: what a rule means and what to do about it. */
function explain(result: ICruiseResult): string {
  const comments = new Map<string, string>();
  for (const rule of result.summary.ruleSetUsed?.forbidden ?? []) comments.set(rule.name ?? '', rule.comment ?? '');
  for (const rule of result.summary.ruleSetUsed?.required ?? []) comments.set(rule.name ?? '', rule.comment ?? '');
  const violated = [...new Set(result.summary.violations.map((v) => v.rule.name))].sort();
  return violated.map((name) => `  ${name}: ${comments.get(name)}`).join('\n');
}

describe('import graph (dependency-cruiser, .dependency-cruiser.cjs)', { timeout: 20_000 }, () => {
  it('lib/, scripts/ and bench/ break none of the rules', async () => {
    const result = await check(root, ['lib', 'scripts', 'bench']);
    // The check sees the graph at all (a parser that read nothing would find nothing wrong).
    expect(result.summary.totalCruised).toBeGreaterThan(20);
    expect(result.modules.find((m) => m.source === 'scripts/deploy.ts')?.dependencies.some((d) => d.resolved.startsWith('lib/'))).toBe(true);
    const found = lines(result);
    const message = `${found.length} import rule violation(s) (npm run check:imports):\n${found.map((l) => `  ${l}`).join('\n')}\nThe rules:\n${explain(result)}\n`;
    expect(found.length, message).toBe(0);
  });

  describe('catches seeded violations in a fixture tree', () => {
    let dir = '';
    const files: Record<string, string> = {
      'lib/errors.ts': 'export class DeployError extends Error {}\n',
      // upward: layer 4 imports layer 7 (the lower import, errors.ts, is fine)
      'lib/nix/commands.ts': "import { DeployError } from '../errors.ts';\nimport { deploy } from '../stages/deploy.ts';\nexport const build = () => [DeployError, deploy];\n",
      'lib/cache/client.ts': "import { DeployError } from '../errors.ts';\nexport const fetchNarinfo = () => DeployError;\n",
      // a 2-file cycle, one way of it type-only (dependency-cruiser reports a cycle once)
      'lib/exec/proc.ts': "import { kill } from './kill.ts';\nexport type Proc = { pid: number };\nexport const run = () => kill;\n",
      'lib/exec/kill.ts': "import type { Proc } from './proc.ts';\nexport const kill = (p: Proc) => p.pid;\n",
      // stages: the plan's types and a lower layer are fine, the planner is not
      'lib/plan/types.ts': 'export type Plan = { hosts: string[] };\n',
      'lib/plan/assemble.ts': "import type { Plan } from './types.ts';\nexport const assemble = (): Plan => ({ hosts: [] });\n",
      'lib/stages/deploy.ts':
        "import type { Plan } from '../plan/types.ts';\nimport { assemble } from '../plan/assemble.ts';\nimport { fetchNarinfo } from '../cache/client.ts';\nexport const deploy = (p: Plan) => [p, assemble, fetchNarinfo];\n",
      // the report model imports a rendering; a rendering importing the model is fine
      'lib/report/render/html.ts': "import type { Timing } from '../timing.ts';\nexport const html = (t: Timing) => String(t);\n",
      'lib/report/timing.ts': 'export type Timing = { ms: number };\n',
      'lib/report/report.ts': "import { html } from './render/html.ts';\nexport const report = html;\n",
      // lib/ imports test/
      'lib/util/writable.ts': "import { fake } from '../../test/helpers/fake.ts';\nexport const writable = fake;\n",
      'test/helpers/fake.ts': 'export const fake = 1;\n',
      // a leftover outside every layer, and an import that resolves to nothing
      'lib/ssh.ts': 'export const ssh = 1;\n',
      'lib/inventory/load.ts': "import { gone } from './gone.ts';\nexport const load = gone;\n",
      // the top layers, importing downward: fine
      'lib/run/run.ts': "import { deploy } from '../stages/deploy.ts';\nexport const run = deploy;\n",
      'lib/cli/main.ts': "import { run } from '../run/run.ts';\nexport const main = run;\n",
      'scripts/deploy.ts': "import { main } from '../lib/cli/main.ts';\nmain;\n",
    };

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'imports-test-'));
      for (const [path, text] of Object.entries(files)) {
        mkdirSync(dirname(join(dir, path)), { recursive: true });
        writeFileSync(join(dir, path), text);
      }
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('reports exactly the seeded ones, each by its rule', async () => {
      const result = await check(dir, ['lib', 'scripts']);
      expect(lines(result)).toEqual([
        'layer-4-nix-cache-imports-upward: lib/nix/commands.ts → lib/stages/deploy.ts',
        'lib-imports-test: lib/util/writable.ts → test/helpers/fake.ts',
        'no-circular: lib/exec/kill.ts → lib/exec/proc.ts → lib/exec/kill.ts',
        'not-in-a-layer: lib/ssh.ts',
        'report-model-imports-render: lib/report/report.ts → lib/report/render/html.ts',
        'stages-import-the-planner: lib/stages/deploy.ts → lib/plan/assemble.ts',
        'unresolvable-import: lib/inventory/load.ts → ./gone.ts',
      ]);
      // and says what they mean
      expect(explain(result)).toContain('layer-4-nix-cache-imports-upward: lib/nix/ lib/cache/ (layer 4) may import only');
    });
  });
});
