/** Stage 2: every selected host's toplevel, in one `nix eval`. */
import type { ListrTask } from 'listr2';
import { StageError } from '../errors.ts';
import { deployRun, filled, type RunContext, type Toplevel } from './context.ts';
import { toplevelDerivationValues, toplevelValues } from '../plan/placeholders.ts';
import { expectSuccess } from './failure.ts';

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

export function evaluateTask(): ListrTask<RunContext> {
  return {
    title: 'evaluate',
    task: async (ctx, task) => {
      const { plan } = deployRun(ctx);
      const command = filled(ctx, plan.evaluate);
      const result = await ctx.executor.run(command, {
        signal: ctx.signal,
        onLine: (line, stream) => stream === 'stderr' && (task.output = line),
      });
      expectSuccess('evaluation failed', command, result);
      ctx.toplevels = parseEvaluation(result.stdout, plan.hosts);
      // From here on, the plan's {{toplevel:…}} and {{toplevel-drv:…}} placeholders have their values.
      const each = (pick: (t: Toplevel) => string) => Object.fromEntries(Object.entries(ctx.toplevels!).map(([host, t]) => [host, pick(t)]));
      Object.assign(ctx.values, toplevelValues(each((t) => t.outPath)), toplevelDerivationValues(each((t) => t.drvPath)));
      task.title = `evaluate: ${plan.hosts.length} toplevel${plan.hosts.length > 1 ? 's' : ''} in one nix eval`;
    },
  };
}
