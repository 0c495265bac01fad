/**
 * The lab's inventory (test/lab/write-inventory.mjs, run by up.sh): valid for
 * the orchestrator, and with the lab's own baseline, so a lab run's verdict
 * compares it with a one-by-one deploy in the lab's seconds, not with the
 * fleet's 120 minutes ("691.8× faster" of a run of seconds).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../lib/inventory/load.ts';
import { formatVerdict } from '../../lib/report/render/verdict.ts';
import { compareWithBaseline } from '../../lib/report/report.ts';

const SCRIPT = fileURLToPath(new URL('../lab/write-inventory.mjs', import.meta.url));
const KEY = 'lab-hawk-1:oDIKru1P7ue9oKkVydLnKg38iF3daOkkDMyi8AchDh8=';

function labInventory(knobs: { kernel: number; host: number; activation: number }, hosts = ['opi01', 'opi02', 'opi03']) {
  const env = {
    PATH: process.env.PATH,
    LAB_DIR: '/var/lib/avalanche-lab',
    COORDINATOR: 'hawk',
    SEED: hosts.at(-1),
    HAWK_ADDR: '10.213.77.1',
    CACHE_URL: 'http://10.213.77.1:5000',
    CACHE_PUBLIC_KEY: KEY,
    GCROOT_DIR: '/nix/var/nix/gcroots/arm-cache',
    HOST_RECORDS: hosts.map((h, i) => `${h} 10.213.77.${11 + i} c3NoLWVkMjU1MTkgQUFBQQ==`).join('\n'),
    LAB_KERNEL_SECONDS: String(knobs.kernel),
    LAB_HOST_SECONDS: String(knobs.host),
    LAB_ACTIVATION_SECONDS: String(knobs.activation),
  };
  return parseInventory(execFileSync('node', [SCRIPT], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }), 'lab hosts.json');
}

describe('the lab inventory\'s baseline', () => {
  it('is the one-by-one deploy in the lab\'s own seconds: hosts × (kernel + toplevel + activation)', () => {
    // The benchmark's knobs: 3 × (40 + 1 + 1) s = 126 s, the document's ~120 min at 1 min = 1 s.
    expect(labInventory({ kernel: 40, host: 1, activation: 1 }).baselineMinutes).toBeCloseTo(126 / 60, 10);
    // npm run demo: 3 × 8 s.
    expect(labInventory({ kernel: 8, host: 0, activation: 0 }).baselineMinutes).toBeCloseTo(24 / 60, 10);
    expect(labInventory({ kernel: 3, host: 0, activation: 0 }, ['opi01', 'opi02', 'opi03', 'opi04', 'opi05', 'opi06']).baselineMinutes).toBeCloseTo(18 / 60, 10);
    // Nothing simulated: still a second per host (each is connected to, copied to and activated).
    expect(labInventory({ kernel: 0, host: 0, activation: 0 }).baselineMinutes).toBeCloseTo(3 / 60, 10);
  });

  it('makes the demo\'s verdict true: compared with the lab\'s 24 s, not the fleet\'s 120 min', () => {
    const { baselineMinutes } = labInventory({ kernel: 8, host: 0, activation: 0 });
    // A demo run of 15.9 s in all, which said "453.9× faster than the 120 min baseline, 120 min saved".
    expect(formatVerdict(compareWithBaseline(15_900, baselineMinutes))).toBe('total 15.9s — 1.5× faster than the 24.0s baseline, 8.1s saved');
  });

  it('refuses knobs that are not whole seconds', () => {
    expect(() => labInventory({ kernel: 1.5, host: 0, activation: 0 })).toThrow(/LAB_KERNEL_SECONDS must be a whole number of seconds/);
  });
});
