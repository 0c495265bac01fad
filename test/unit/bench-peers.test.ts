/**
 * The benchmark's peers at a scale point, run in rounds: each strategy is
 * judged by its median run, and the summary shows every run's wall and how
 * many rounds deploy-all won (bench/peers.ts, bench/summary.ts).
 */
import { describe, expect, it } from 'vitest';
import { defaultPeerRounds, medianRuns, type PeerRun, type PeersPoint } from '../../bench/peers.ts';
import { peersBlock, roundsWon } from '../../bench/summary.ts';

const knobs = { kernelSeconds: 40, hostSeconds: 1, activationSeconds: 1, evalSeconds: 1, evalMib: 256 };

function run(strategy: PeerRun['strategy'], round: number, wallMs: number): PeerRun {
  return {
    strategy,
    round,
    generation: `g-${strategy}-${round}`,
    hosts: 3,
    wallMs,
    ok: true,
    kernelBuiltOn: ['opi03'],
    toplevelBuilds: 3,
    evaluations: { total: 3, perHost: {}, min: 1, max: 1, byCommand: {} },
    coordinator: undefined,
    phases: [{ name: `round ${round}`, startMs: 0, ms: wallMs }],
    hostTimes: [],
    checks: [],
  } as PeerRun;
}

/** Three rounds, interleaved as measurePeers runs them; deploy-all's second run had a slow spell. */
const point: PeersPoint = {
  hosts: 3,
  labUpMs: 4000,
  containerMemoryMiB: {},
  rounds: 3,
  runs: [
    run('colmena', 1, 48_200), run('deploy-all', 1, 47_100),
    run('colmena', 2, 48_000), run('deploy-all', 2, 48_600),
    run('colmena', 3, 48_500), run('deploy-all', 3, 47_300),
  ],
};

describe('peers in rounds', () => {
  it('each strategy is represented by its median run, in the order the strategies ran', () => {
    expect(medianRuns(point).map((r) => [r.strategy, r.round])).toEqual([['colmena', 1], ['deploy-all', 3]]);
    // An even number of rounds: the lower middle; one round: that run.
    expect(medianRuns({ runs: [run('document', 1, 9), run('document', 2, 5), run('document', 3, 7), run('document', 4, 6)] })[0]!.wallMs).toBe(6);
    expect(medianRuns({ runs: [run('parallel', 1, 50_000)] })[0]!.wallMs).toBe(50_000);
  });

  it('a failed run (its wall is its time to the failure) is left out while another run succeeded', () => {
    const failed = { ...run('deploy-all', 2, 3_000), ok: false };
    expect(medianRuns({ runs: [run('deploy-all', 1, 47_100), failed, run('deploy-all', 3, 47_300)] })[0]!.round).toBe(1);
    expect(medianRuns({ runs: [failed] })[0]).toBe(failed);
    expect(roundsWon({ runs: [failed, run('colmena', 2, 48_000)] }, 'colmena')).toBe(0);
  });

  it('counts the rounds deploy-all won against a peer, a round without either run lost', () => {
    expect(roundsWon(point, 'colmena')).toBe(2);
    expect(roundsWon({ runs: [run('deploy-all', 1, 1), run('colmena', 2, 2)] }, 'colmena')).toBe(0);
  });

  it('the summary compares the medians and shows every wall and the rounds won', () => {
    const text = peersBlock(point, knobs).join('\n');
    expect(text).toContain('3 rounds, each strategy once per round');
    expect(text).toMatch(/colmena +48\.2 s \(48\.2 s, 48\.0 s, 48\.5 s\)/);
    expect(text).toMatch(/deploy-all +47\.3 s \(47\.1 s, 48\.6 s, 47\.3 s\)/);
    expect(text).toContain('deploy-all ÷ peer (wall, medians): colmena 0.98 (0.9 s faster, won 2 of 3 rounds)');
    expect(text).toContain('deploy-all: ');
    expect(text).toContain('(its median run, round 3)');
  });

  it('runs three rounds where the strategies end within a run\'s noise of each other (3 hosts), one from 10 hosts on', () => {
    expect([1, 3, 10, 30].map(defaultPeerRounds)).toEqual([3, 3, 1, 1]);
  });
});
