/**
 * A whole run of the fleet as the CLI makes it (recording executor, real
 * HTTP test cache, a report directory, listr2's plain renderer by default),
 * and everything an operator reads after it: what listr2 printed on stdout
 * and stderr, then what the CLI prints at the end (lib/cli/deploy.ts
 * printResult).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Chalk, type ChalkInstance } from 'chalk';
import { printResult } from '../../lib/cli/deploy.ts';
import type { Io } from '../../lib/cli/io.ts';
import { planDeploy } from '../../lib/plan/assemble.ts';
import { recentMedians } from '../../lib/report/compare.ts';
import { type RendererChoice, runPlan } from '../../lib/run/run.ts';
import { FIXTURE_KEY, fixture, fleetInventory } from './fixtures.ts';
import { startTestCache } from './http-cache.ts';
import { FLEET_HOSTS, fleetResponders } from './pipeline.ts';
import { RecordingExecutor, type Responder } from './recording-executor.ts';

/** Everything written to process.stdout and process.stderr while `action` runs (listr2 writes there), kept off the test's own output. */
export async function printedBy<T>(action: () => Promise<T>): Promise<{ value: T; printed: string }> {
  const written: string[] = [];
  const streams = [process.stdout, process.stderr];
  const writes = streams.map((stream) => stream.write);
  for (const stream of streams) {
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      written.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
      const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }) as typeof stream.write;
  }
  try {
    return { value: await action(), printed: written.join('') };
  } finally {
    streams.forEach((stream, i) => (stream.write = writes[i]!));
  }
}

/** `responders` answer first, the fleet's usual answers the rest; `colours`: what the command decided (default none). */
export async function runAndPrint(responders: readonly Responder[], options: { renderer?: RendererChoice; colours?: ChalkInstance; canaries?: string[] } = {}) {
  const cache = await startTestCache({ '/c4yw6ms3vwp93mlkv5g3h9ig7j9zspcn.narinfo': fixture('narinfo/signed.narinfo') });
  try {
    const inventory = fleetInventory((json) => {
      json.cache.url = cache.url;
      json.cache.publicKey = FIXTURE_KEY;
      json.health = { systemState: 'skip', retries: 0, intervalSeconds: 0, settleSeconds: 0 };
    });
    const plan = planDeploy(inventory, FLEET_HOSTS, { goal: 'switch', onCoordinator: true, canaries: options.canaries });
    const executor = new RecordingExecutor([...responders, ...fleetResponders]);
    // runs/ inside a directory of its own: the history line goes beside it (<report-dir>/../history.jsonl), not into /tmp.
    const reportDir = join(await mkdtemp(join(tmpdir(), 'run-output-')), 'runs');
    const colours = options.colours ?? new Chalk({ level: 0 });
    const { value: result, printed } = await printedBy(() =>
      runPlan(plan, { executor, signal: new AbortController().signal, renderer: options.renderer ?? 'simple', colours, reportDir, runId: 'r1' }),
    );
    const out: string[] = [];
    const io: Io = { stdout: (t) => out.push(t), stderr: (t) => out.push(t), isTTY: false, env: { CI: 'true' } };
    const exitCode = printResult(result, false, recentMedians([], plan), io);
    return { result, plan, executor, exitCode, printed, end: out.join('\n'), text: `${printed}\n${out.join('\n')}` };
  } finally {
    await cache.close();
  }
}
