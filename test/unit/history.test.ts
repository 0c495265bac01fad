import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appendHistory, type HistoryEntry, historyPathFor, readHistory, summarizeRun } from '../../lib/report/history.ts';
import { sampleReport } from '../helpers/sample-report.ts';

async function tempHistory() {
  return join(await mkdtemp(join(tmpdir(), 'history-')), 'nested', 'history.jsonl');
}

function entry(id: string, totalMs = 60_000): HistoryEntry {
  return { ...summarizeRun(sampleReport({ totalMs })), id };
}

function collect() {
  const warnings: string[] = [];
  return { warnings, warn: (w: string) => warnings.push(w) };
}

describe('history file', () => {
  it('lives next to the runs directory', () => {
    expect(historyPathFor('.deploy/runs')).toBe(join('.deploy', 'history.jsonl'));
    expect(historyPathFor('/var/lib/deploy/runs/')).toBe('/var/lib/deploy/history.jsonl');
    expect(historyPathFor('runs')).toBe('history.jsonl');
  });

  it('summarizes a run in one line', () => {
    expect(summarizeRun(sampleReport())).toEqual({
      id: '2026-01-02T03-04-05-000Z',
      startedAt: '2026-01-02T03:04:05.000Z',
      outcome: 'success',
      operation: 'deploy',
      goal: 'switch',
      seed: 'opi03',
      hosts: ['opi01', 'opi02', 'opi03'],
      totalMs: 60_000,
      stageMs: { preflight: 2000, evaluate: 4000, 'seed-build': 30_000, 'wait-for-cache': 1000, deploy: 23_000 },
      hostMs: { opi01: 13_000, opi02: 11_000, opi03: 10_000 },
      verdict: { baselineMinutes: 120, speedup: 120, savedMinutes: 119 },
    });
    // A 0 ms run has an infinite speed-up, which JSON cannot hold.
    expect(summarizeRun(sampleReport({ totalMs: 0 })).verdict?.speedup).toBeNull();
  });

  it('appends runs and reads them back, oldest first; no file is an empty history', async () => {
    const path = await tempHistory();
    const { warnings, warn } = collect();
    expect(await readHistory(path, warn)).toEqual([]);
    await appendHistory(path, entry('a'));
    await appendHistory(path, entry('b', 50_000));
    expect(await readHistory(path, warn)).toEqual([entry('a'), entry('b', 50_000)]);
    expect((await readFile(path, 'utf8')).split('\n')).toHaveLength(3);
    expect(warnings).toEqual([]);
  });

  it('keeps every line whole when many runs append at once', async () => {
    const path = await tempHistory();
    // Long lines (~6 kB): a writer that split its line into several writes would interleave.
    const hosts = Array.from({ length: 400 }, (_, i) => `host${String(i).padStart(3, '0')}`);
    const entries = Array.from({ length: 40 }, (_, i) => ({ ...entry(`run-${i}`), hosts }));
    await Promise.all(entries.map((e) => appendHistory(path, e)));
    const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
    expect(lines).toHaveLength(40);
    const { warnings, warn } = collect();
    const read = await readHistory(path, warn);
    expect(warnings).toEqual([]);
    expect(read.map((e) => e.id).sort()).toEqual(entries.map((e) => e.id).sort());
  });

  it('skips corrupt lines with a warning naming the line', async () => {
    const path = await tempHistory();
    await mkdir(join(path, '..'), { recursive: true });
    const good = JSON.stringify(entry('a'));
    await writeFile(path, `${good}\nnot json{\n{"id":"b"}\n\n${JSON.stringify(entry('c'))}\n`);
    const { warnings, warn } = collect();
    expect((await readHistory(path, warn)).map((e) => e.id)).toEqual(['a', 'c']);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(new RegExp(`^${path}:2: skipped a corrupt line \\(`));
    expect(warnings[1]).toContain(':3: skipped a corrupt line (startedAt: ');
  });

  it('starts a fresh line after a line cut short by a crash, so the next run is not lost', async () => {
    const path = await tempHistory();
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, `${JSON.stringify(entry('a'))}\n{"id":"half-writ`);
    await appendHistory(path, entry('b'));
    const { warnings, warn } = collect();
    expect((await readHistory(path, warn)).map((e) => e.id)).toEqual(['a', 'b']);
    expect(warnings).toEqual([expect.stringContaining(':2: skipped a corrupt line')]);
  });

  it('goes on without history when the file cannot be read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'history-'));
    const { warnings, warn } = collect();
    expect(await readHistory(dir, warn)).toEqual([]);
    expect(warnings).toEqual([`cannot read ${dir} (EISDIR); going on without the run history`]);
  });
});
