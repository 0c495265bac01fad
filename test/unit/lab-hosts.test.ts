/**
 * The lab's host names and addresses up to opi30 (test/lab/common.sh, the
 * benchmark's bench/lab.ts), and the benchmark's evaluation count
 * (bench/peers.ts) from what bench/bin/nix keeps of nix's stderr.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { countEvaluations } from '../../bench/peers.ts';
import { hostAddress, labHosts } from '../../bench/lab.ts';
import { ZxExecutor } from '../../lib/exec/zx-executor.ts';
import { repoRoot } from '../helpers/fixtures.ts';

const executor = new ZxExecutor();

/** `. common.sh; <script>` in bash (only defines variables and functions), LAB_HOSTS as given. */
function common(script: string, hosts: string) {
  return executor.run({ argv: ['bash', '-c', `. "$1"; ${script}`, 'lab-hosts-test', join(repoRoot, 'test/lab/common.sh')], env: { LAB_HOSTS: hosts }, timeoutMs: 10_000 });
}

describe('lab hosts opi01..opi30', () => {
  it('common.sh knows 30 opis, their addresses 10.213.77.(10+NN), and refuses others', async () => {
    const all = await common('echo "$LAB_ALL_HOSTS"; lab_addr opi01; lab_addr opi09; lab_addr opi10; lab_addr opi30; lab_check_hosts && echo ok', 'opi01 opi10 opi30');
    expect(all.exitCode, all.stderr).toBe(0);
    const [names, ...rest] = all.stdout.trim().split('\n');
    expect(names!.split(' ')).toEqual(labHosts(30));
    expect(rest).toEqual(['10.213.77.11', '10.213.77.19', '10.213.77.20', '10.213.77.40', 'ok']);
    for (const bad of ['opi31', 'opi00', 'opi1', 'opi100', 'opi01 opi01']) {
      const r = await common('lab_check_hosts', bad);
      expect(r.exitCode, bad).not.toBe(0);
      expect(r.stderr).toMatch(/LAB_HOSTS/);
    }
    expect((await common('lab_addr opi31', 'opi01')).exitCode).not.toBe(0);
  });

  it("the benchmark's host names and addresses agree with common.sh's", () => {
    expect(labHosts(3)).toEqual(['opi01', 'opi02', 'opi03']);
    expect(labHosts(30).at(-1)).toBe('opi30');
    expect(hostAddress('opi30')).toBe('10.213.77.40');
    expect(hostAddress('opi09')).toBe('10.213.77.19');
  });
});

describe('countEvaluations', () => {
  it("counts one generation's lab-eval markers per host, other generations and lines ignored", () => {
    // bench/bin/nix keeps `grep -o` matches: the same from plain stderr and from internal-json msg lines.
    const lines = ['lab-eval opi01 g2 nix-eval', 'lab-eval opi02 g2 nix-build', 'lab-eval opi01 g2', 'lab-eval opi01 g1', '', 'something else'];
    expect(countEvaluations(lines, ['opi01', 'opi02', 'opi03'], 'g2')).toEqual({ total: 3, perHost: { opi01: 2, opi02: 1, opi03: 0 }, min: 0, max: 2, byCommand: { 'nix-eval': 1, 'nix-build': 1, unknown: 1 } });
  });
});
