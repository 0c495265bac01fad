/**
 * Stage 2: every selected host's toplevel, evaluated once per run.
 *
 * The plan's evaluations start with the run, beside preflight, one after
 * the other ({@link startEvaluations}, called by lib/run/run.ts): they only
 * read the flake on this machine and touch no host, and a failed preflight
 * stops them.
 * The stage waits for the first (each system's first host), which the seed
 * build's head starts need; the seed build waits for the others
 * ({@link evaluated}) while its head starts already build what the toplevels
 * share.
 */
import type { ListrTask } from 'listr2';
import { InterruptedError, StageError } from '../errors.ts';
import type { DeployPlan } from '../plan/types.ts';
import { deployRun, type Evaluations, filled, headStartsUnderway, type RunContext, type RunningEvaluation, type Toplevel } from './context.ts';
import { toplevelDerivationValues, toplevelValues } from '../plan/placeholders.ts';
import { expectSuccess } from './failure.ts';

/**
 * Reads `nix eval --json` of lib/nix/commands.ts evaluateToplevelsArgv: per
 * host `{ drv, out }`. Throws StageError when a host's entry is missing or
 * is not a `.drv` and an absolute store path.
 */
export function parseEvaluation(stdout: string, hosts: readonly string[]): Record<string, Toplevel> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new StageError(`nix eval printed no JSON: ${stdout.slice(0, 200)}`);
  }
  const toplevels: Record<string, Toplevel> = {};
  for (const host of hosts) {
    const entry = (parsed as Record<string, { drv?: unknown; out?: unknown }> | null)?.[host];
    if (typeof entry?.drv !== 'string' || !entry.drv.startsWith('/') || !entry.drv.endsWith('.drv') || typeof entry.out !== 'string' || !entry.out.startsWith('/')) {
      throw new StageError(`nix eval gave no toplevel for ${host}: ${JSON.stringify(entry ?? null).slice(0, 200)}`);
    }
    toplevels[host] = { drvPath: entry.drv, outPath: entry.out };
  }
  return toplevels;
}

/**
 * Starts the plan's evaluations, one after another in the plan's order
 * (stopped when the run ends: `ctx.background`): the first (each system's
 * first host, which the head starts need) has this machine to itself, the
 * others begin once the head starts are underway ({@link headStartsUnderway}),
 * and at most one evaluator's memory is in use at a time. Each, when it ends
 * well, puts its hosts' toplevels into `ctx.toplevels` and the values of
 * their `{{toplevel…:<host>}}` placeholders; one that fails (or is stopped)
 * fails those after it with the same error. Never rejects unobserved: a
 * failure reaches whoever awaits it (the evaluate stage, the seed build).
 */
export function startEvaluations(ctx: RunContext): Evaluations {
  const { plan } = deployRun(ctx);
  const signal = ctx.background ? AbortSignal.any([ctx.signal, ctx.background.signal]) : ctx.signal;
  const running: RunningEvaluation[] = [];
  const evaluations: Evaluations = { running, show: () => {} };
  let previous = Promise.resolve();
  for (const [i, evaluation] of plan.evaluate.entries()) {
    const entry: RunningEvaluation = {
      hosts: evaluation.hosts,
      done: previous.then(async () => {
        // The others wait for the head starts too (ctx.headStarts, set by then: lib/run/run.ts starts them next).
        if (i > 0) await unlessStopped(headStartsUnderway(ctx), signal, 'the head starts');
        const startedAt = Date.now();
        await runEvaluation(ctx, evaluation, signal, (line) => evaluations.show(line));
        // Only an evaluation that ended well has a duration: the stage's title counts it as done.
        entry.durationMs = Date.now() - startedAt;
      }),
    };
    entry.done.catch(() => undefined);
    previous = entry.done;
    running.push(entry);
  }
  return evaluations;
}

/** One `nix eval` of the plan; its hosts' toplevels go into the run's values. */
async function runEvaluation(ctx: RunContext, evaluation: DeployPlan['evaluate'][number], signal: AbortSignal, show: (line: string) => void): Promise<void> {
  const command = filled(ctx, evaluation.command);
  const result = await ctx.executor.run(command, { signal, onLine: (line, stream) => stream === 'stderr' && show(line) });
  expectSuccess(`evaluation of ${evaluation.hosts.join(', ')} failed`, command, result);
  const toplevels = parseEvaluation(result.stdout, evaluation.hosts);
  ctx.toplevels = { ...ctx.toplevels, ...toplevels };
  const each = (pick: (t: Toplevel) => string) => Object.fromEntries(Object.entries(toplevels).map(([host, t]) => [host, pick(t)]));
  // From here on, these hosts' {{toplevel:…}} and {{toplevel-drv:…}} placeholders have their values.
  Object.assign(ctx.values, toplevelValues(each((t) => t.outPath)), toplevelDerivationValues(each((t) => t.drvPath)));
}

/**
 * Waits until every evaluation holding one of `hosts` has ended well;
 * rethrows the first failure. Gives up with InterruptedError when `signal`
 * aborts first.
 */
export async function evaluated(ctx: RunContext, hosts: readonly string[], signal: AbortSignal): Promise<void> {
  const evaluations = ctx.evaluations ?? (ctx.evaluations = startEvaluations(ctx));
  const waits = evaluations.running.filter((e) => e.hosts.some((h) => hosts.includes(h))).map((e) => e.done);
  await unlessStopped(Promise.all(waits), signal, 'the evaluation');
}

/**
 * `promise`'s outcome, or InterruptedError as soon as `signal` aborts
 * (whichever comes first); the listener it adds is removed either way.
 */
export async function unlessStopped<T>(promise: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  // Left behind when the signal wins: its later rejection is nobody's to handle.
  promise.catch(() => undefined);
  if (signal.aborted) throw new InterruptedError(`stopped before ${what}`);
  let onAbort = () => {};
  const stopped = new Promise<never>((_, reject) => {
    onAbort = () => reject(new InterruptedError(`stopped while waiting for ${what}`));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  stopped.catch(() => undefined);
  try {
    return await Promise.race([promise, stopped]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

export function evaluateTask(): ListrTask<RunContext> {
  return {
    title: 'evaluate',
    task: async (ctx, task) => {
      const { plan } = deployRun(ctx);
      const evaluations = ctx.evaluations ?? (ctx.evaluations = startEvaluations(ctx));
      evaluations.show = (line) => (task.output = line);
      const first = evaluations.running[0]!;
      await evaluated(ctx, first.hosts, ctx.signal);
      const s = (ms: number | undefined) => `${((ms ?? 0) / 1000).toFixed(1)} s`;
      const rest = evaluations.running.slice(1);
      const total = plan.hosts.length;
      const what = `${total} toplevel${total > 1 ? 's' : ''}`;
      // The others' evaluation starts when the first ended: it goes on beside the seed build.
      task.title = rest.length === 0
        ? `evaluate: ${what} in one nix eval (${s(first.durationMs)}, beside preflight)`
        : `evaluate: ${first.hosts.join(', ')} (${s(first.durationMs)}); the other ${total - first.hosts.length} beside the seed build`;
      evaluations.show = () => {};
    },
  };
}
