import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Comparison } from '../../lib/report/compare.ts';
import { loadRun } from '../../lib/report/load.ts';
import { renderHtml } from '../../lib/report/render/html.ts';
import { renderMarkdown } from '../../lib/report/render/markdown.ts';
import { renderReport } from '../../lib/report/render/text.ts';
import { type HostEntry, type RunReport, writeReport } from '../../lib/report/report.ts';
import { sampleReport } from '../helpers/sample-report.ts';

const usual: Comparison = {
  label: 'the median of the last 3 runs',
  column: 'median',
  totalMs: 70_000,
  stageMs: { 'seed-build': 40_000 },
  hostMs: { opi01: 12_000 },
};

describe('markdown', () => {
  it('is the table and the verdict, GitHub-flavoured', () => {
    expect(renderMarkdown(sampleReport(), usual)).toBe(
      [
        '### avalanche-deploy run `2026-01-02T03-04-05-000Z`: success',
        '',
        'switch of opi01, opi02, opi03 (seed opi03), started 2026-01-02T03:04:05.000Z',
        '',
        '| stage / host | duration | median | outcome |',
        '|---|---:|---:|---|',
        '| preflight | 2.0s | — | success |',
        '| evaluate | 4.0s | — | success |',
        '| seed-build | 30.0s | 40.0s | success |',
        '| wait-for-cache | 1.0s | — | success |',
        '| deploy | 23.0s | — | success |',
        '| ↳ opi01 | 13.0s | 12.0s | switched (new generation, boot default) |',
        '| ↳ opi02 | 11.0s | — | switched (new generation, boot default) |',
        '| ↳ opi03 | 10.0s | — | switched (new generation, boot default) |',
        '',
        '**total 1m00s — 120.0× faster than the 120 min baseline, 119 min saved; 14% faster than the median of the last 3 runs (1m10s)**',
        '',
        '**built 1 derivation (seed build 30.0s)**',
        '',
        '| derivation | built on | took |',
        '|---|---|---:|',
        '| linux-6.1-opi | ssh://nix-builder@opi03.internal | 28.0s |',
      ].join('\n'),
    );
  });

  it('keeps an error in a code block that its backticks cannot close, and pipes inside cells', () => {
    const failed = sampleReport({ outcome: 'failed', error: 'opi02 failed:\n```\n  | error: boom' });
    const text = renderMarkdown(failed);
    expect(text).toContain('**total 1m00s — failed, not compared with the baseline**\n\nerror:\n\n````text\nopi02 failed:\n```\n  | error: boom\n````');
    const piped = renderMarkdown(sampleReport({ hosts: [{ name: 'a|b', state: 'deployed', generation: 'new' }] }));
    expect(piped).toContain('| ↳ a\\|b | — | switched (new generation, boot default) |');
  });
});

describe('terminal report', () => {
  it('adds the comparison column and the comparison to the verdict', () => {
    const lines = renderReport(sampleReport(), { comparison: usual }).split('\n');
    expect(lines.slice(0, 4)).toEqual([
      'stage / host    duration  median  outcome',
      'preflight           2.0s       —  success',
      'evaluate            4.0s       —  success',
      'seed-build         30.0s   40.0s  success',
    ]);
    expect(lines).toContain('                0        10s       20s      30s       40s      50s      1m');
    expect(lines.at(-1)).toBe('total 1m00s — 120.0× faster than the 120 min baseline, 119 min saved; 14% faster than the median of the last 3 runs (1m10s)');
  });
});

describe('HTML page', () => {
  const html = renderHtml(sampleReport(), usual);

  it('is one page with an SVG timeline: one bar per stage and host', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html.match(/<svg[\s>]/g)).toHaveLength(1);
    const svg = html.slice(html.indexOf('<svg'), html.indexOf('</svg>'));
    const bars = [...svg.matchAll(/<rect class="bar (stage|host)[^"]*"/g)].map((m) => m[1]);
    expect(bars).toEqual(['stage', 'stage', 'stage', 'stage', 'stage', 'host', 'host', 'host']);
    // Bars sit on one axis: the seed-build bar (6 s to 36 s of 60 s) spans half the chart.
    const seedBuild = svg.match(/<rect class="bar stage" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"[^>]*><title>seed-build:/)!;
    expect(Number(seedBuild[2])).toBeCloseTo(660 / 2, 0);
    expect(html).toContain('14% faster than the median of the last 3 runs (1m10s)');
  });

  it('loads nothing from anywhere and runs no script', () => {
    expect(html).not.toMatch(/https?:/i);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|\bsrc=|\bhref=|url\(|@import/i);
  });

  it('escapes what came from the run', () => {
    const hostile = renderHtml(sampleReport({ outcome: 'failed', error: '<script>alert(1)</script> & "x"' }));
    expect(hostile).not.toContain('<script>');
    expect(hostile).toContain('&#60;script&#62;alert(1)&#60;/script&#62; &#38; &#34;x&#34;');
  });

  it('draws no bar for what never ran', () => {
    const page = renderHtml(sampleReport({ hosts: [{ name: 'opi02', state: 'not-started', generation: 'previous' }] }));
    expect(page.match(/<rect class="bar/g)).toHaveLength(5);
    expect(page).toContain('— not-started</text>');
  });
});

describe('each host\'s outcome says what its goal did there (table, markdown, HTML, stored JSON)', () => {
  const host = (name: string, fields: Partial<HostEntry>): HostEntry => ({ name, state: 'deployed', generation: 'new', startMs: 40_000, durationMs: 10_000, ...fields });
  const outcomes = (report: RunReport) => {
    const lines = renderReport(report).split('\n');
    return report.hosts.map((h) => lines.find((line) => line.startsWith(`  ${h.name} `))!.replace(/^ {2}\S+\s+\S+\s+/, ''));
  };

  it('one deployed host per goal, an unchanged one, and first deploys', () => {
    const report = sampleReport({
      hosts: [
        host('a', { effect: 'switched' }),
        host('b', { effect: 'boot-default' }),
        host('c', { effect: 'activated' }),
        host('d', { effect: 'checked', generation: 'previous' }),
        host('e', { effect: 'unchanged' }),
        host('f', { effect: 'switched', firstDeploy: true }),
        host('g', { effect: 'checked', generation: 'previous', firstDeploy: true }),
      ],
    });
    expect(outcomes(report)).toEqual([
      'switched (new generation, boot default)',
      'boot default set (runs the old one until reboot)',
      'activated until reboot (boot default unchanged)',
      'checked (nothing changed)',
      'unchanged (already ran this toplevel)',
      'switched (new generation, boot default; first deploy)',
      'checked (nothing changed; first deploy)',
    ]);
    const markdown = renderMarkdown(report);
    expect(markdown).toContain('| ↳ c | 10.0s | activated until reboot (boot default unchanged) |');
    const html = renderHtml(report);
    expect(html).toContain('<td>boot default set (runs the old one until reboot)</td>');
    expect(html).toContain('<td>unchanged (already ran this toplevel)</td>');
    expect(html).not.toContain('deployed (');
  });

  it('a host that had no profile says "first deploy", never a previous generation it did not have', () => {
    const report = sampleReport({
      outcome: 'failed',
      hosts: [
        host('a', { state: 'rolled-back', generation: 'previous', firstDeploy: true }),
        host('b', { state: 'interrupted', generation: 'previous', firstDeploy: true }),
        host('c', { state: 'rolled-back', generation: 'new', firstDeploy: true }),
        host('d', { state: 'rolled-back', generation: 'previous' }),
        host('e', { state: 'failed', generation: 'unknown' }),
        { name: 'f', state: 'not-started', generation: 'previous' },
      ],
    });
    expect(outcomes(report)).toEqual([
      'rolled-back (first deploy)',
      'interrupted (first deploy)',
      'rolled-back (first deploy, new generation)',
      'rolled-back (previous generation)',
      'failed (unknown generation)',
      'not-started (previous generation)',
    ]);
  });

  it('reports written before effects were recorded say what their goal does', () => {
    const old = (goal: string, generation: HostEntry['generation']) => outcomes(sampleReport({ goal, hosts: [{ name: 'a', state: 'deployed', generation, durationMs: 1000, startMs: 0 }] }))[0];
    expect(old('dry-activate', 'previous')).toBe('checked (nothing changed)');
    expect(old('test', 'new')).toBe('activated until reboot (boot default unchanged)');
    expect(old('boot', 'new')).toBe('boot default set (runs the old one until reboot)');
    expect(old('switch', 'new')).toBe('switched (new generation, boot default)');
    // Before generations were recorded: only the state.
    expect(outcomes(sampleReport({ goal: 'nonsense', hosts: [{ name: 'a', state: 'deployed' }] }))[0]).toBe('deployed');
  });

  it('the stored report keeps effect and firstDeploy, and a report without them still loads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'runs-'));
    const current = sampleReport({ hosts: [host('a', { effect: 'unchanged' }), host('b', { effect: 'switched', firstDeploy: true })] });
    await writeReport(dir, current);
    expect((await loadRun(dir)).hosts.map((h) => [h.effect, h.firstDeploy])).toEqual([['unchanged', undefined], ['switched', true]]);

    const older = JSON.parse(JSON.stringify(sampleReport({ startedAt: '2025-01-01T00:00:00.000Z', goal: 'dry-activate', hosts: [{ name: 'a', state: 'deployed', generation: 'previous' }] })));
    await writeFile(join(dir, `${older.id}.json`), JSON.stringify(older));
    const loaded = await loadRun(dir, older.id);
    expect(loaded.hosts[0]).toEqual({ name: 'a', state: 'deployed', generation: 'previous' });
    expect(renderReport(loaded)).toMatch(/^ {2}a +— {2}checked \(nothing changed\)$/m);
  });
});
