/**
 * scripts/rollback.ts's planning: which hosts go back to what. The rest —
 * confirmation, the run, the result — is the deploy's (lib/cli/deploy.ts).
 */
import { UsageError } from '../errors.ts';
import type { HostName, Inventory } from '../inventory/schema.ts';
import { resolveSelection } from '../inventory/select.ts';
import { planRollback } from '../plan/rollback.ts';
import type { RollbackPlan, RollbackTarget } from '../plan/types.ts';
import { loadRun } from '../report/load.ts';
import type { HostEntry, RunReport } from '../report/report.ts';
import { type CliOptions, deployStageChoices } from './args.ts';

/**
 * The rollback plan the options ask for. With --run, the hosts are those
 * the run changed (narrowed by any selector), each going back to the system
 * the run found there. Throws UsageError (exit 2) for a run that cannot be
 * read or changed nothing revertible, and for hosts the inventory no longer has.
 */
export async function makeRollbackPlan(options: CliOptions, inventory: Inventory, onCoordinator: boolean): Promise<RollbackPlan> {
  const request = options.rollbackTo ?? { kind: 'previous' };
  const paced = { goal: options.goal === 'dry-activate' ? undefined : options.goal, onCoordinator, ...deployStageChoices(options) };
  if (request.kind !== 'run') {
    const hosts = resolveSelection(inventory, options.selector);
    const to: RollbackTarget = request.kind === 'generation' ? { kind: 'generation', number: request.number } : { kind: 'previous' };
    return planRollback(inventory, hosts, { ...paced, to: () => to });
  }

  let run: RunReport;
  try {
    run = await loadRun(options.reportDir, request.id === 'latest' ? undefined : request.id);
  } catch (error) {
    throw new UsageError(`--run ${request.id}: ${(error as Error).message}`);
  }
  const previous = revertible(run);
  const unknown = Object.keys(previous).filter((host) => !Object.hasOwn(inventory.hosts, host));
  if (unknown.length) throw new UsageError(`--run ${run.id} changed ${unknown.join(', ')}, which ${options.inventory} does not have`);
  const selected = new Set(options.selector.on.length || options.selector.exclude.length ? resolveSelection(inventory, options.selector) : Object.keys(inventory.hosts));
  const hosts: HostName[] = Object.keys(previous).filter((host) => selected.has(host));
  if (hosts.length === 0) throw new UsageError(`--run ${run.id}: none of the hosts it changed (${Object.keys(previous).join(', ')}) is selected`);
  return planRollback(inventory, hosts, { ...paced, to: (host) => ({ kind: 'toplevel', toplevel: previous[host]!, run: run.id }) });
}

/**
 * The hosts `run` changed, each with the system it ran before: deployed ones
 * whose goal changed something, and failed or interrupted ones not known to
 * be back on their previous generation. Throws UsageError when a changed
 * host's previous system was not recorded (a first deploy, or a report
 * written before reports recorded it), or when the run changed nothing.
 */
export function revertible(run: RunReport): Record<HostName, string> {
  const changed = run.hosts.filter(changedByRun);
  if (changed.length === 0) throw new UsageError(`run ${run.id} changed no host (${run.hosts.map((h) => `${h.name}: ${h.state}`).join(', ')}): nothing to revert`);
  const unrecorded = changed.filter((h) => !h.previousToplevel);
  if (unrecorded.length) {
    const why = unrecorded.map((h) => `${h.name} (${h.firstDeploy ? 'a first deploy: it had no system before' : 'the report does not record what it ran before'})`).join(', ');
    throw new UsageError(`run ${run.id}: no system to go back to for ${why}; --exclude them, or roll them back by generation (--to)`);
  }
  return Object.fromEntries(changed.map((h) => [h.name, h.previousToplevel!]));
}

function changedByRun(host: HostEntry): boolean {
  if (host.state === 'deployed') return host.effect !== 'unchanged' && host.effect !== 'checked' && host.generation !== 'previous';
  return (host.state === 'failed' || host.state === 'interrupted') && host.generation !== 'previous';
}
