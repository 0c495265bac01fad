/**
 * Issue 12 #9: every --json answer has a JSON Schema in schemas/, generated
 * from the zod schema the code parses the answer through before printing it.
 * Real answers (a run of the pipeline, the commands' errors) are validated
 * against the checked-in files, so a shape that drifts from its schema fails here.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { runDeployCli } from '../../lib/cli/deploy.ts';
import { runDoctorCli } from '../../lib/cli/doctor.ts';
import { exitCodeOf, failure, type Io } from '../../lib/cli/io.ts';
import { deployResultJson, JSON_SCHEMAS } from '../../lib/cli/schemas.ts';
import { ExitCode, StageError } from '../../lib/errors.ts';
import type { RunResult } from '../../lib/run/run.ts';
import { fleetInventoryText, repoRoot, fleetInventoryPath } from '../helpers/fixtures.ts';
import { runPipeline } from '../helpers/pipeline.ts';
import { when } from '../helpers/recording-executor.ts';

const ajv = new Ajv2020({ strict: false });
const validator = (file: string) => ajv.compile(JSON.parse(readFileSync(join(repoRoot, file), 'utf8')));
const validDeployResult = validator('schemas/deploy-result.schema.json');
const validError = validator('schemas/error.schema.json');

function expectValid(validate: ReturnType<typeof validator>, json: unknown): void {
  expect(validate(json), JSON.stringify(validate.errors)).toBe(true);
}

function capture(): { io: Io; stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { io: { stdout: (t) => stdout.push(t), stderr: (t) => stderr.push(t), isTTY: false, env: { CI: 'true' } }, stdout, stderr };
}

const resultJson = (result: RunResult) => JSON.parse(deployResultJson(result, result.error ? exitCodeOf(result.error) : ExitCode.ok));

describe('--json answers and their schemas', () => {
  it('every schema file is the one generated from the code (as write-schema.ts --check says in CI)', () => {
    for (const { path, schema } of JSON_SCHEMAS) {
      expect(readFileSync(join(repoRoot, path), 'utf8'), path).toBe(`${JSON.stringify(schema(), null, 2)}\n`);
    }
  });

  it('a run that deployed, and one that failed with hints, are schemas/deploy-result.schema.json', async () => {
    const deployed = resultJson((await runPipeline([])).result);
    expect(deployed).toMatchObject({ outcome: 'success', exitCode: 0, report: { outcome: 'success' } });
    expect(Object.keys(deployed)).toEqual(['outcome', 'exitCode', 'report']);
    expectValid(validDeployResult, deployed);

    const broken = when(['build'], { exitCode: 1, stderr: 'error: builder for linux-6.1-opi.drv failed' });
    const failed = resultJson((await runPipeline([broken])).result);
    expect(failed).toMatchObject({ outcome: 'failed', exitCode: 1, error: { type: 'StageError', message: expect.any(String), hints: expect.any(Array) } });
    expectValid(validDeployResult, failed);

    const interrupted = new AbortController();
    interrupted.abort();
    const stopped = resultJson((await runPipeline([], { signal: interrupted.signal })).result);
    expect(stopped).toMatchObject({ outcome: 'interrupted', exitCode: 130 });
    expectValid(validDeployResult, stopped);

    // The schema admits nothing else: a field added to the answer but not to its schema fails.
    expect(validDeployResult({ ...deployed, extra: 1 })).toBe(false);
    expect(validDeployResult({ ...deployed, report: { ...deployed.report, extra: 1 } })).toBe(false);
  });

  it('errors under --json, from the deploy and the doctor, are schemas/error.schema.json', async () => {
    const answers: unknown[] = [];
    for (const args of [['--json', 'opi09'], ['--json', '--goal', 'reboot', 'opi01'], ['opi01', '--frobnicate', '--json']]) {
      const { io, stdout, stderr } = capture();
      expect(await runDeployCli('deploy', ['--inventory', fleetInventoryPath(), ...args], io)).toBe(2);
      expect(stderr).toEqual([]);
      answers.push(JSON.parse(stdout.join('\n')));
    }
    // An inventory error names the JSON path (here an IPv6 target, which no nixos-rebuild spelling can reach).
    const dir = await mkdtemp(join(tmpdir(), 'json-output-'));
    const inventory = JSON.parse(fleetInventoryText());
    inventory.hosts.opi02.address = '[fd00::13]';
    await writeFile(join(dir, 'hosts.json'), JSON.stringify(inventory));
    const bad = capture();
    expect(await runDeployCli('deploy', ['--json', '--inventory', join(dir, 'hosts.json'), 'opi01'], bad.io)).toBe(2);
    const inventoryError = JSON.parse(bad.stdout.join('\n'));
    expect(inventoryError).toMatchObject({ outcome: 'error', exitCode: 2, error: { type: 'InventoryError', message: expect.stringContaining('hosts.opi02.address: an IPv6 address cannot be') } });
    answers.push(inventoryError);

    const doctor = capture();
    expect(await runDoctorCli(['--json', '--inventory', '/nonexistent/hosts.json'], doctor.io)).toBe(2);
    answers.push(JSON.parse(doctor.stdout.join('\n')));

    // A stage's error with hints, and something thrown that is not an Error at all.
    const stage = capture();
    expect(failure(new StageError('seed build failed', ['look at the seed']), true, stage.io)).toBe(1);
    const odd = capture();
    expect(failure('a string', true, odd.io)).toBe(1);
    answers.push(JSON.parse(stage.stdout.join('\n')), JSON.parse(odd.stdout.join('\n')));
    expect(answers.at(-2)).toEqual({ outcome: 'error', exitCode: 1, error: { type: 'StageError', message: 'seed build failed', hints: ['look at the seed'] } });
    expect(answers.at(-1)).toEqual({ outcome: 'error', exitCode: 1, error: { type: 'string', message: 'a string', hints: [] } });

    for (const answer of answers) expectValid(validError, answer);
    expect(validError({ outcome: 'error', exitCode: 2, error: { type: 'UsageError', message: 'x', hints: [], extra: true } })).toBe(false);
  });
});
