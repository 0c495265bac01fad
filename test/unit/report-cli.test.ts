import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runReportCli } from '../../lib/cli/report.ts';
import { appendHistory, summarizeRun } from '../../lib/report/history.ts';
import { writeReport } from '../../lib/report/report.ts';
import { sampleReport } from '../helpers/sample-report.ts';

// Two runs of the same fleet: 80 s, then 60 s.
const first = sampleReport({ startedAt: '2026-01-02T10:00:00.000Z', totalMs: 80_000 });
const second = sampleReport({ startedAt: '2026-01-02T11:00:00.000Z', totalMs: 60_000 });
let root: string;
let runs: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'report-cli-'));
  runs = join(root, 'runs');
  for (const report of [first, second]) {
    await writeReport(runs, report);
    await appendHistory(join(root, 'history.jsonl'), summarizeRun(report));
  }
});

async function report(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runReportCli(args, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), isTTY: false, env: {} });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('scripts/report.ts', () => {
  it('prints help with exit 0', async () => {
    const { code, stdout } = await report('--help');
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: npx tsx scripts/report.ts [<run-id>|--last|--history] [options]');
  });

  it('shows the latest run with table, timeline and verdict against the runs before it', async () => {
    const { code, stdout, stderr } = await report('--report-dir', runs);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.split('\n');
    expect(lines[0]).toBe(`run ${second.id}: success — switch of opi01, opi02, opi03 (seed opi03), started ${second.startedAt}`);
    expect(lines).toContain('stage / host    duration  median  outcome');
    expect(lines.some((l) => l.startsWith('seed-build    ') && l.includes('█'))).toBe(true);
    expect(lines.at(-1)).toBe('total 1m00s — 120.0× faster than the 120 min baseline, 119 min saved; 25% faster than the last run (1m20s)');
    expect((await report('--last', '--report-dir', runs)).stdout).toBe(stdout);
  });

  it('shows a run by id or unique prefix, never compared with later runs', async () => {
    const { code, stdout } = await report('2026-01-02T10', '--report-dir', runs);
    expect(code).toBe(0);
    expect(stdout.split('\n')[0]).toContain(`run ${first.id}: success`);
    expect(stdout.split('\n').at(-1)).toBe('total 1m20s — 90.0× faster than the 120 min baseline, 119 min saved');
  });

  it('compares with a given run', async () => {
    const { code, stdout } = await report(first.id, '--compare', second.id, '--report-dir', runs);
    expect(code).toBe(0);
    expect(stdout).toContain('stage / host    duration  other run  outcome');
    expect(stdout.split('\n').at(-1)).toContain(`; 33% slower than run ${second.id} (1m00s)`);
  });

  it('prints markdown for a CI step summary', async () => {
    const { code, stdout } = await report('--markdown', '--report-dir', runs);
    expect(code).toBe(0);
    expect(stdout.split('\n')[0]).toBe(`### avalanche-deploy run \`${second.id}\`: success`);
    expect(stdout).toContain('| stage / host | duration | median | outcome |');
  });

  it('writes the HTML page', async () => {
    const file = join(root, 'report.html');
    const { code, stdout } = await report('--html', file, '--report-dir', runs);
    expect(code).toBe(0);
    expect(stdout).toBe(`wrote ${file} (run ${second.id})`);
    expect(await readFile(file, 'utf8')).toContain('<svg class="timeline"');
    const failed = await report('--html', join(root, 'missing', 'report.html'), '--report-dir', runs);
    expect(failed).toMatchObject({ code: 1, stderr: expect.stringContaining('cannot write') });
  });

  it('lists the history', async () => {
    const { code, stdout } = await report('--history', '--report-dir', runs);
    expect(code).toBe(0);
    expect(stdout.split('\n')).toEqual([
      'run                       outcome  goal    hosts              total  vs baseline',
      `${first.id}  success  switch  opi01,opi02,opi03  1m20s        90.0×`,
      `${second.id}  success  switch  opi01,opi02,opi03  1m00s       120.0×`,
      '',
      'the median of the last 2 runs like the latest (switch of opi01, opi02, opi03): 1m10s',
    ]);
    expect((await report('--history', '--markdown', '--report-dir', runs)).stdout).toContain(`| ${first.id} | success | switch |`);
  });

  it('warns about a corrupt history line and goes on', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'report-cli-'));
    await writeReport(join(dir, 'runs'), first);
    await writeFile(join(dir, 'history.jsonl'), `{oops\n${JSON.stringify(summarizeRun(first))}\n`);
    const { code, stdout, stderr } = await report('--history', '--report-dir', join(dir, 'runs'));
    expect(code).toBe(0);
    expect(stdout).toContain(first.id);
    expect(stderr).toMatch(/^warning: .*history\.jsonl:1: skipped a corrupt line/);
  });

  it('exits 2 with a clear message, and no stack trace, for bad arguments and missing runs', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'report-cli-'));
    await mkdir(join(empty, 'runs'));
    const cases: [string[], string][] = [
      [['nope', '--report-dir', runs], `no run 'nope' in ${runs}; latest: ${second.id}, ${first.id}`],
      [['2026-01-02', '--report-dir', runs], `run id '2026-01-02' is ambiguous: ${first.id}, ${second.id}`],
      [['--compare', 'nope', '--report-dir', runs], `no run 'nope' in ${runs}`],
      [['--report-dir', join(empty, 'runs')], `no run reports in ${join(empty, 'runs')} yet`],
      [['--report-dir', join(empty, 'absent')], `no run reports: ${join(empty, 'absent')} does not exist`],
      [['--history', '--report-dir', join(empty, 'runs')], `no runs in ${join(empty, 'history.jsonl')} yet`],
      [['--frobnicate'], "Unknown option '--frobnicate'"],
      [['a', 'b'], 'one run id at most (got a b)'],
      [['--last', 'a'], "choose one of a run id, --last or --history (got run id 'a', --last)"],
      [['--history', '--html', 'x.html'], '--html shows one run; it does not go with --history'],
      [['--history', '--compare', 'a'], '--compare compares one run'],
      [['--html'], "Option '--html <value>' argument missing"],
    ];
    for (const [args, message] of cases) {
      const { code, stdout, stderr } = await report(...args);
      expect({ args, code, stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(stderr).toContain(`error: ${message}`);
      expect(stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('exits 2 for a file in the runs directory that is not a run report', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'report-cli-'));
    await writeFile(join(dir, 'broken.json'), '{"id": 1}');
    await writeFile(join(dir, 'truncated.json'), '{"id": "trunc');
    expect(await report('broken', '--report-dir', dir)).toMatchObject({ code: 2, stderr: expect.stringContaining('broken.json is not a run report: id: ') });
    expect(await report('truncated', '--report-dir', dir)).toMatchObject({ code: 2, stderr: expect.stringContaining('cannot read') });
  });
});
