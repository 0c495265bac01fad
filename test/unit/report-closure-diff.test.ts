/**
 * The hosts' closure diffs in the run report: stored and loaded with the
 * report, and rendered as text, markdown (the CI step summary) and HTML;
 * nothing when no host carries one.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ClosureDiff, type HostClosureDiff, parseClosureDiffOutput } from '../../lib/nix/closure-diff.ts';
import { loadRun } from '../../lib/report/load.ts';
import { closureDiffRows, describeClosureDiff } from '../../lib/report/render/closure-diff.ts';
import { renderHtml } from '../../lib/report/render/html.ts';
import { renderMarkdown } from '../../lib/report/render/markdown.ts';
import { renderReport } from '../../lib/report/render/text.ts';
import { type RunReport, writeReport } from '../../lib/report/report.ts';
import { fixture } from '../helpers/fixtures.ts';
import { sampleReport } from '../helpers/sample-report.ts';

/** What Nix 2.26 reported in the lab between generations dc1 and dc2 (test/fixtures/diff-closures/). */
const labDiff = parseClosureDiffOutput(fixture('diff-closures/nix-2.26.out')) as ClosureDiff;
const firstDeploy: HostClosureDiff = { kind: 'first-deploy', after: labDiff.after, closureBytes: { after: 142_976 } };
const kernelOnly: ClosureDiff = { ...labDiff, packages: labDiff.packages.filter((p) => p.name === 'linux'), sizeDeltaBytes: 0, closureBytes: { before: 5184, after: 5184 } };

/** opi01 with the lab's diff, opi02 first deployed, opi03 without a diff. */
function withDiffs(): RunReport {
  const base = sampleReport();
  return { ...base, hosts: [{ ...base.hosts[0]!, diff: labDiff }, { ...base.hosts[1]!, diff: firstDeploy }, base.hosts[2]!] };
}

describe('the rows of a diff', () => {
  it('changed first, then added, removed and resized; versions as Nix writes them; sizes signed', () => {
    expect(closureDiffRows(labDiff)).toEqual([
      ['lab-lib', 'changed', '1.0, 1.1 → 2.0', ''],
      ['lab-tools', 'changed', '2.1 → 2.2', '+24.0 KiB'],
      ['linux', 'changed', '6.1.1 → 6.1.2', ''],
      ['nixos-system-opi01', 'changed', '25.05.lab-dc1 → 25.05.lab-dc2', ''],
      ['lab-new', 'added', '∅ → 0.1', '+20.1 KiB'],
      ['lab-old', 'removed', '0.9 → ∅', '-12.1 KiB'],
      ['lab-data', 'resized', '', '+48.0 KiB'],
    ]);
    expect(describeClosureDiff(labDiff)).toBe('4 changed (linux 6.1.1 → 6.1.2), 1 added, 1 removed, 1 resized, +78.6 KiB (closure 61.0 KiB → 139.6 KiB)');
    expect(describeClosureDiff(firstDeploy)).toBe('first deploy, 139.6 KiB');
  });
});

describe('terminal report', () => {
  it('lists each diffed host\'s changes between the table and the timeline', () => {
    const text = renderReport(withDiffs());
    expect(text).toContain(
      [
        '  opi03            10.0s  switched (new generation, boot default)',
        '',
        'built 1 derivation (seed build 30.0s)',
        '  derivation     built on                           took',
        '  linux-6.1-opi  ssh://nix-builder@opi03.internal  28.0s',
        '',
        'closure changes:',
        '  opi01: 4 changed (linux 6.1.1 → 6.1.2), 1 added, 1 removed, 1 resized, +78.6 KiB (closure 61.0 KiB → 139.6 KiB)',
        '    package             change   versions                            size',
        '    lab-lib             changed  1.0, 1.1 → 2.0',
        '    lab-tools           changed  2.1 → 2.2                      +24.0 KiB',
        '    linux               changed  6.1.1 → 6.1.2',
        '    nixos-system-opi01  changed  25.05.lab-dc1 → 25.05.lab-dc2',
        '    lab-new             added    ∅ → 0.1                        +20.1 KiB',
        '    lab-old             removed  0.9 → ∅                        -12.1 KiB',
        '    lab-data            resized                                 +48.0 KiB',
        '  opi02: first deploy, 139.6 KiB',
        '',
      ].join('\n'),
    );
    expect(text).not.toMatch(/^ {2}opi03:/m);
    expect(text.split('\n').at(-1)).toMatch(/^total 1m00s/);
  });

  it('says nothing of closures when no host was diffed', () => {
    expect(renderReport(sampleReport())).not.toContain('closure');
  });
});

describe('markdown (the CI step summary)', () => {
  it('after the verdict: per host its line, its packages folded in a table', () => {
    const markdown = renderMarkdown(withDiffs());
    const section = markdown.slice(markdown.indexOf('#### Closure changes'));
    expect(markdown.indexOf('**total 1m00s')).toBeLessThan(markdown.indexOf('#### Closure changes'));
    expect(section).toBe(
      [
        '#### Closure changes',
        '',
        '<details>',
        '<summary><b>opi01</b>: 4 changed (linux 6.1.1 → 6.1.2), 1 added, 1 removed, 1 resized, +78.6 KiB (closure 61.0 KiB → 139.6 KiB)</summary>',
        '',
        '| package | change | versions | size |',
        '|---|---|---|---:|',
        '| lab-lib | changed | 1.0, 1.1 → 2.0 |  |',
        '| lab-tools | changed | 2.1 → 2.2 | +24.0 KiB |',
        '| linux | changed | 6.1.1 → 6.1.2 |  |',
        '| nixos-system-opi01 | changed | 25.05.lab-dc1 → 25.05.lab-dc2 |  |',
        '| lab-new | added | ∅ → 0.1 | +20.1 KiB |',
        '| lab-old | removed | 0.9 → ∅ | -12.1 KiB |',
        '| lab-data | resized |  | +48.0 KiB |',
        '',
        '</details>',
        '',
        '**opi02**: first deploy, 139.6 KiB',
      ].join('\n'),
    );
  });

  it('a host whose diff lists nothing has its line only; no section without diffs', () => {
    const base = sampleReport();
    const unchanged: ClosureDiff = { ...labDiff, packages: [], sizeDeltaBytes: 0 };
    const markdown = renderMarkdown({ ...base, hosts: [{ ...base.hosts[0]!, diff: unchanged }] });
    expect(markdown.endsWith('#### Closure changes\n\n**opi01**: no package changes, +0 B (closure 61.0 KiB → 139.6 KiB)')).toBe(true);
    expect(renderMarkdown(sampleReport())).not.toContain('Closure changes');
  });
});

describe('HTML page', () => {
  it('a section per diffed host with its packages\' table, escaped', () => {
    const report = withDiffs();
    const html = renderHtml({ ...report, hosts: [{ ...report.hosts[0]!, name: 'opi<01>' }, report.hosts[1]!, report.hosts[2]!] });
    const section = html.slice(html.indexOf('<h2>Closure changes</h2>'), html.indexOf('<h2>Builds</h2>'));
    expect(section).toContain('<summary><b>opi&#60;01&#62;</b>: 4 changed (linux 6.1.1 → 6.1.2), 1 added, 1 removed, 1 resized, +78.6 KiB (closure 61.0 KiB → 139.6 KiB)</summary>');
    expect(section).toContain('<tr class="changed"><td>linux</td><td>changed</td><td>6.1.1 → 6.1.2</td><td class="num"></td></tr>');
    expect(section).toContain('<tr class="added"><td>lab-new</td><td>added</td><td>∅ → 0.1</td><td class="num">+20.1 KiB</td></tr>');
    expect(section.match(/<tr class="/g)).toHaveLength(7);
    expect(section).toContain('<p class="diff-host"><b>opi02</b>: first deploy, 139.6 KiB</p>');
    expect(section).not.toContain('opi03');
    expect(html).not.toMatch(/<script|https?:\/\//);
  });

  it('no section without diffs', () => {
    expect(renderHtml(sampleReport())).not.toContain('Closure changes');
  });
});

describe('the stored report', () => {
  it('keeps each host\'s diff, and the kernel\'s change reads back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'runs-'));
    const base = sampleReport();
    await writeReport(dir, { ...base, hosts: [{ ...base.hosts[0]!, diff: kernelOnly }, { ...base.hosts[1]!, diff: firstDeploy }, base.hosts[2]!] });
    const loaded = await loadRun(dir);
    expect(loaded.hosts.map((h) => h.diff)).toEqual([kernelOnly, firstDeploy, undefined]);
    expect(renderReport(loaded)).toContain('  opi01: 1 changed (linux 6.1.1 → 6.1.2), +0 B (closure 5.1 KiB → 5.1 KiB)');
  });

  it('refuses a diff that is neither a diff nor a first deploy', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'runs-'));
    const base = sampleReport();
    const bad = { ...base, hosts: [{ ...base.hosts[0]!, diff: { kind: 'first-deploy', after: labDiff.after } }] } as unknown as RunReport;
    await writeReport(dir, bad);
    await expect(loadRun(dir)).rejects.toThrow();
  });
});
