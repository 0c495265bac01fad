/**
 * --dry-run --json: the plan, all of it, stable, valid against the published
 * schema, and holding every command a run executes (checked against a run of
 * that plan, placeholders filled with what the run knew).
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import type { CommandSpec } from '../../lib/exec/types.ts';
import { planDeploy } from '../../lib/plan/assemble.ts';
import { fillCommand, previousGenerationValues } from '../../lib/plan/placeholders.ts';
import { dryRunJson } from '../../lib/plan/render.ts';
import type { PlannedCommand } from '../../lib/plan/types.ts';
import { fleetInventory, repoRoot } from '../helpers/fixtures.ts';
import { FLEET_HOSTS, runPipeline, runValues } from '../helpers/pipeline.ts';

const schema = JSON.parse(readFileSync(`${repoRoot}/schemas/dry-run.schema.json`, 'utf8'));
const validate = new Ajv2020({ strict: false }).compile(schema);

/** Every planned command in a JSON value: objects with an argv and a timeout. */
function plannedCommands(value: unknown): PlannedCommand[] {
  if (Array.isArray(value)) return value.flatMap(plannedCommands);
  if (typeof value !== 'object' || value === null) return [];
  const record = value as Record<string, unknown>;
  if (Array.isArray(record.argv) && typeof record.timeoutMs === 'number') return [record as unknown as PlannedCommand];
  return Object.values(record).flatMap(plannedCommands);
}

describe('--dry-run --json', () => {
  const inventory = fleetInventory();

  it('is byte-identical for the same input, and valid against schemas/dry-run.schema.json', () => {
    const once = dryRunJson(planDeploy(inventory, FLEET_HOSTS, { goal: 'switch', onCoordinator: false, localUser: 'avl' }));
    const twice = dryRunJson(planDeploy(fleetInventory(), FLEET_HOSTS, { goal: 'switch', onCoordinator: false, localUser: 'avl' }));
    expect(twice).toBe(once);
    expect(validate(JSON.parse(once)), JSON.stringify(validate.errors)).toBe(true);
    // No random ids or socket paths: those are placeholders until the run.
    expect(once).toContain('ControlPath={{ssh-control-dir}}/%C');
    expect(once).not.toMatch(/avalanche-ssh-/);
  });

  it('holds no inventory and no options, only the plan', () => {
    const json = JSON.parse(dryRunJson(planDeploy(inventory, FLEET_HOSTS, { goal: 'switch', onCoordinator: true })));
    expect(Object.keys(json)).toEqual(['dryRun', 'plan']);
    for (const key of ['inventory', 'targetInventory', 'options']) expect(json.plan).not.toHaveProperty(key);
    // The schema refuses anything else: additional properties are not allowed.
    expect(validate({ ...json, plan: { ...json.plan, inventory: {} } })).toBe(false);
  });

  it('holds every command a run of the plan executes, rollback and the copy to the coordinator included', async () => {
    // opi01's health check fails after its switch, so it is rolled back; running off the coordinator copies there.
    const unhealthy = (spec: CommandSpec) => (spec.argv.includes('deploy@opi01.internal') && spec.argv.at(-1) === 'true' ? { exitCode: 1, stderr: 'down' } : undefined);
    const run = await runPipeline([unhealthy], { plan: { onCoordinator: false, localUser: 'avl' } });
    const { executor, plan } = run;
    const planned = plannedCommands(JSON.parse(dryRunJson(plan)));
    const values = {
      ...runValues(run),
      ...previousGenerationValues({ profileLink: 'system-4-link', currentSystem: '/nix/store/old-system' }),
      // The pipeline takes no lock.
      'lock-holder': '',
      'lock-holder-id': '',
    };
    const asRun = new Set(planned.map((c) => JSON.stringify(fillCommand(c, values).argv)));
    const ran = executor.calls.map((c) => c.argv);
    expect(ran.some((argv) => argv.some((a) => a.includes('avalanche-rollback')))).toBe(true);
    expect(ran.some((argv) => argv[0] === 'nix' && argv[1] === 'copy')).toBe(true);
    expect(ran.filter((argv) => !asRun.has(JSON.stringify(argv)))).toEqual([]);
  });
});
