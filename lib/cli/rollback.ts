/**
 * scripts/rollback.ts's planning: which hosts go back to what. The rest —
 * confirmation, the run, the result — is the deploy's (lib/cli/deploy.ts).
 */
import { UsageError } from '../errors.ts';
import type { HostName, Inventory } from '../inventory/schema.ts';
import { resolveSelection } from '../inventory/select.ts';
import { planRollback } from '../plan/rollback.ts';
import type { RollbackPlan, RollbackTarget } from '../plan/types.ts';
import { listRunIds, loadRun } from '../report/load.ts';
import type { HostEntry, RunReport } from '../report/report.ts';
import { type CliOptions, deployStageChoices } from './args.ts';
import { thisMachine } from './selection.ts';

/**
 * The rollback plan the options ask for. With --run, the hosts are those
 * the run changed (narrowed by any selector), each going back to the system
 * the run found there. Throws UsageError (exit 2) for a run that cannot be
 * read or changed nothing revertible, and for hosts the inventory no longer has.
 */
export async function makeRollbackPlan(options: CliOptions, inventory: Inventory, onCoordinator: boolean): Promise<RollbackPlan> {
  const request = options.rollbackTo ?? { kind: 'previous' };
  // lib/cli/args.ts refuses dry-activate and build for a rollback.
  const paced = (hosts: readonly string[]) => ({
    goal: options.goal === 'dry-activate' || options.goal === 'build' ? undefined : options.goal,
    onCoordinator,
    thisMachine: thisMachine(inventory)?.name,
    ...deployStageChoices(options),
  });
  if (request.kind !== 'run') {
    const hosts = resolveSelection(inventory, options.selector);
    const to: RollbackTarget = request.kind === 'generation' ? { kind: 'generation', number: request.number } : { kind: 'previous' };
    return planRollback(inventory, hosts, { ...paced(hosts), to: () => to });
  }

  let run: RunReport;
  try {
    run = request.id === 'latest' ? await latestChangingRun(options.reportDir) : await loadRun(options.reportDir, request.id);
  } catch (error) {
    throw new UsageError(`--run ${request.id}: ${(error as Error).message}`);
  }
  // The selection first: what it leaves out needs no previous system, nor a place in the inventory.
  const explicit = options.selector.on.length > 0 || options.selector.exclude.length > 0;
  const selected = explicit ? new Set(resolveSelection(inventory, options.selector)) : undefined;
  const previous = revertible(run, (host) => selected?.has(host) ?? true);
  const unknown = Object.keys(previous).filter((host) => !Object.hasOwn(inventory.hosts, host));
  if (unknown.length) throw new UsageError(`--run ${run.id} changed ${unknown.join(', ')}, which ${options.inventory} does not have; --on the hosts to revert`);
  return planRollback(inventory, Object.keys(previous), { ...paced(Object.keys(previous)), to: (host) => ({ kind: 'toplevel', toplevel: previous[host]!, run: run.id }) });
}

/** `--run latest`: the newest run that changed a host (runs stopped by the lock or in preflight, or that failed everywhere, changed none). */
async function latestChangingRun(reportDir: string): Promise<RunReport> {
  const ids = await listRunIds(reportDir);
  for (const id of ids.reverse()) {
    const run = await loadRun(reportDir, id).catch(() => undefined);
    if (run?.hosts.some(changedByRun)) return run;
  }
  // None: loadRun says why (no reports, or which is the latest).
  const latest = await loadRun(reportDir);
  throw new Error(`no run in ${reportDir} changed a host (the latest, ${latest.id}, changed none)`);
}

/**
 * The hosts `run` changed that `selected` keeps, each with the system it
 * ran before: deployed ones whose goal changed something, and failed or
 * interrupted ones not known to be back on their previous generation. Throws
 * UsageError when the run changed nothing, when the selection keeps none of
 * what it changed, or when a kept host's previous system was not recorded (a
 * first deploy, or a report written before reports recorded it).
 */
export function revertible(run: RunReport, selected: (host: HostName) => boolean = () => true): Record<HostName, string> {
  const changed = run.hosts.filter(changedByRun);
  if (changed.length === 0) throw new UsageError(`run ${run.id} changed no host (${run.hosts.map((h) => `${h.name}: ${h.state}`).join(', ')}): nothing to revert`);
  const chosen = changed.filter((h) => selected(h.name));
  if (chosen.length === 0) throw new UsageError(`--run ${run.id}: none of the hosts it changed (${changed.map((h) => h.name).join(', ')}) is selected`);
  const unrecorded = chosen.filter((h) => !h.previousToplevel);
  if (unrecorded.length) {
    const why = unrecorded.map((h) => `${h.name} (${h.firstDeploy ? 'a first deploy: it had no system before' : 'the report does not record what it ran before'})`).join(', ');
    throw new UsageError(`run ${run.id}: no system to go back to for ${why}; --exclude them, or roll them back by generation (--to)`);
  }
  return Object.fromEntries(chosen.map((h) => [h.name, h.previousToplevel!]));
}

function changedByRun(host: HostEntry): boolean {
  if (host.state === 'deployed') return host.effect !== 'unchanged' && host.effect !== 'checked' && host.generation !== 'previous';
  return (host.state === 'failed' || host.state === 'interrupted') && host.generation !== 'previous';
}
