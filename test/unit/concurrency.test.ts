import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Io } from '../../lib/cli/io.ts';
import { runDeployCli } from '../../lib/cli/deploy.ts';
import { concurrencyFor, DEFAULT_CONCURRENCY } from '../../lib/plan/concurrency.ts';
import { fleetInventoryText } from '../helpers/fixtures.ts';

/** The aarch64 fleet grown to `count` opis (copies of opi01 at their own addresses). */
function inventoryOf(count: number): string {
  const json = JSON.parse(fleetInventoryText());
  const template = json.hosts.opi01;
  json.hosts = {};
  for (let i = 1; i <= count; i++) {
    const name = `opi${String(i).padStart(2, '0')}`;
    json.hosts[name] = { ...template, address: `${name}.lan` };
  }
  json.seed = 'opi01';
  const path = join(mkdtempSync(join(tmpdir(), 'concurrency-')), 'hosts.json');
  writeFileSync(path, JSON.stringify(json));
  return path;
}

async function plannedConcurrency(hosts: number, args: string[] = []): Promise<number> {
  const out: string[] = [];
  const io: Io = { stdout: (t) => out.push(t), stderr: () => {}, isTTY: false, env: { CI: 'true' } };
  const code = await runDeployCli('deploy-all', ['--inventory', inventoryOf(hosts), '--dry-run', '--json', ...args], io);
  expect(code).toBe(0);
  return JSON.parse(out.join('\n')).plan.deploy.concurrency;
}

describe('default concurrency', () => {
  it('is 10 (colmena\'s), never more than the hosts, never less than 1', () => {
    expect(DEFAULT_CONCURRENCY).toBe(10);
    expect(concurrencyFor(30)).toBe(10);
    expect(concurrencyFor(3)).toBe(3);
    expect(concurrencyFor(0)).toBe(1);
    expect(concurrencyFor(30, 25)).toBe(25);
    expect(concurrencyFor(3, 25)).toBe(3);
  });

  it('bounds a deploy of 30 hosts to 10 at a time unless --concurrency says otherwise', async () => {
    expect(await plannedConcurrency(30)).toBe(10);
    expect(await plannedConcurrency(30, ['--concurrency', '30'])).toBe(30); // no canary: every host in one wave
    expect(await plannedConcurrency(30, ['--concurrency', '30', '--canary', 'opi01'])).toBe(29); // the canary goes first, alone
    expect(await plannedConcurrency(3)).toBe(3);
    expect(await plannedConcurrency(30, ['--rolling', '--batch-size', '4'])).toBe(4);
  });
});
