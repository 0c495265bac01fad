/**
 * deploy.ts and deploy-all.ts: parse the arguments, load the inventory,
 * plan, then print the plan (--dry-run) or run it and print the result.
 * Typed errors become exit codes (lib/cli/io.ts); nothing throws past
 * runDeployCli.
 */
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { ExitCode, UsageError } from '../errors.ts';
import type { Executor } from '../exec/types.ts';
import { ZxExecutor } from '../exec/zx-executor.ts';
import { loadInventory } from '../inventory/load.ts';
import { flakeRef } from '../inventory/schema.ts';
import { resolveSelection } from '../inventory/select.ts';
import { probeRebuildTool } from '../nix/nixos-rebuild.ts';
import { localNixSystem } from '../nix/system.ts';
import { probeNixVersion } from '../nix/version.ts';
import { planDeploy } from '../plan/assemble.ts';
import { dryRunJson, renderPlan } from '../plan/render.ts';
import type { DeployPlan, RollbackPlan, RunnablePlan } from '../plan/types.ts';
import { preferredSeed } from '../plan/waves.ts';
import { isOnCoordinator } from '../remote/fleet.ts';
import { recentMedians } from '../report/compare.ts';
import { type HistoryEntry, historyPathFor, readHistory } from '../report/history.ts';
import { closureDiffText, hostClosureDiffText } from '../report/render/closure-diff.ts';
import { renderReport } from '../report/render/text.ts';
import { type RendererChoice, type RunPlanOptions, type RunResult, runPlan } from '../run/run.ts';
import { whyNotWritable } from '../util/writable.ts';
import { type CliOptions, type Command, deployStageChoices, parseCliArgs, usage } from './args.ts';
import { thisMachine } from './selection.ts';
import { colours } from './colour.ts';
import { exitCodeOf, failure, interruptible, type Io, processIo, reportError, wantsJson } from './io.ts';
import { makeRollbackPlan } from './rollback.ts';
import { deployResultJson } from './schemas.ts';

const ALLOW_UNSIGNED_WARNING =
  'WARNING: --allow-unsigned: waiting for the cache accepts narinfos that are unsigned or signed by another key than ' +
  'cache.publicKey. Targets that check signatures will not substitute those paths and get them copied over SSH instead.';

/**
 * Returns the exit code (lib/errors.ts ExitCode); never throws. Under --json
 * stdout carries exactly one JSON document, also for errors found while
 * parsing the arguments (lib/cli/io.ts failure).
 */
export async function runDeployCli(command: Command, argv: readonly string[], io: Io = processIo): Promise<number> {
  let json = wantsJson(argv);
  try {
    const options = parseCliArgs(command, argv);
    json = options.json;
    if (options.help) {
      io.stdout(usage(command));
      return ExitCode.ok;
    }
    const executor = new ZxExecutor();
    const plan = options.command === 'rollback' ? await makeRollback(options) : await makePlan(options, executor);
    if (options.dryRun && !options.dryRunDiff) {
      io.stdout(json ? dryRunJson(plan) : renderPlan(plan));
      return ExitCode.ok;
    }
    if (options.dryRunDiff) return await dryRunWithDiff(plan, options, executor, io, `${command} ${argv.join(' ')}`);
    if (options.interactive && (!io.ask || io.env.CI)) {
      throw new UsageError('--interactive asks on the terminal: stdin and stderr must be one, and CI unset');
    }
    if (!(await confirmed(command, plan, options, io))) {
      io.stderr('not deployed: not confirmed (--yes skips the question)');
      return ExitCode.stageFailed;
    }
    const history = await readyToRun(options, io);
    const result = await runWithSignals(plan, options, executor, history, io, `${command} ${argv.join(' ')}`);
    return printResult(result, json, recentMedians(history, plan), io);
  } catch (error) {
    return failure(error, json, io);
  }
}

/**
 * --dry-run --diff: the plan, then the run up to each host's closure diff
 * (built, pinned, served, fetched onto the targets: nothing activated),
 * then the diffs. Holds the deploy lock (it builds and pins); writes no
 * report or history (it deployed nothing). Exit 0, or 1 when a stage failed.
 */
async function dryRunWithDiff(plan: RunnablePlan, options: CliOptions, executor: Executor, io: Io, commandLine: string): Promise<number> {
  if (!options.json) io.stdout(`${renderPlan(plan)}\n\n--diff: building and comparing; nothing is activated`);
  const result = await runWithSignals(plan, { ...options, reportDir: undefined }, executor, [], io, commandLine);
  const exitCode = result.error ? exitCodeOf(result.error) : ExitCode.ok;
  if (options.json) {
    const diffs = Object.fromEntries(result.report.hosts.flatMap((h) => (h.diff ? [[h.name, h.diff]] : [])));
    if (result.error) return failure(result.error, true, io);
    io.stdout(dryRunJson(plan, diffs));
    return exitCode;
  }
  const changes = closureDiffText(result.report);
  io.stdout(`\n${changes.length ? changes.join('\n') : 'no closure diff was made'}`);
  for (const host of result.report.hosts) if (!host.diff && host.note) io.stdout(`  ${host.name}: ${host.note}`);
  if (result.error) reportError(result.error, io, shownFailure(result.report));
  return exitCode;
}

/**
 * --interactive: before each host's activation, its closure diff and the
 * question, one host at a time (hosts deploying in parallel wait their turn).
 */
function askBeforeActivating(io: Io, goal: string): NonNullable<RunPlanOptions['confirmActivation']> {
  let turn: Promise<unknown> = Promise.resolve();
  return (host, diff, why) => {
    const answer = turn.then(async () => {
      io.stderr(diff ? hostClosureDiffText(host, diff).join('\n') : `  ${host}: no closure diff (${why ?? 'unknown'})`);
      return (await io.ask?.(`Activate ${host} (${goal})?`)) ?? false;
    });
    turn = answer.catch(() => undefined);
    return answer;
  };
}

/** A rollback's plan: nothing to probe here, it runs no nixos-rebuild. */
async function makeRollback(options: CliOptions): Promise<RollbackPlan> {
  const inventory = await loadInventory(options.inventory);
  return makeRollbackPlan(options, inventory, isOnCoordinator(inventory, hostname()));
}

/** Loads and selects, probes the nixos-rebuild and the Nix that will run here (flags and installables depend on them, also for --dry-run), and plans. */
async function makePlan(options: CliOptions, executor: Executor): Promise<DeployPlan> {
  if (options.flake !== undefined && !flakeRef.safeParse(options.flake).success) {
    throw new UsageError(`--flake '${options.flake}': must be a flake reference without "#", spaces or shell characters`);
  }
  const inventory = await loadInventory(options.inventory);
  const hosts = resolveSelection(inventory, options.selector);
  const probeMs = inventory.timeouts.connectSeconds * 1000;
  const [rebuildTool, localNix] = await Promise.all([
    // A build runs no nixos-rebuild: nothing to probe.
    options.goal === 'build' ? undefined : probeRebuildTool(executor, inventory.nixosRebuild.command, probeMs),
    // The seed build's installables are spelt for this Nix.
    probeNixVersion(executor, probeMs),
  ]);
  const onCoordinator = isOnCoordinator(inventory, hostname());
  return planDeploy(inventory, hosts, {
    goal: options.goal,
    flake: options.flake,
    seed: options.seed,
    canaries: options.canaries,
    ...deployStageChoices(options),
    onCoordinator,
    thisMachine: thisMachine(inventory)?.name,
    allowUnsigned: options.allowUnsigned,
    rebuildTool,
    localNix,
    localSystem: localNixSystem(),
  });
}

/**
 * A person at a terminal confirms a deploy of more than one host, having
 * seen what it will do; --yes, --json, CI, or no one to ask (stdin or
 * stderr not a terminal) skip the question.
 */
async function confirmed(command: Command, plan: RunnablePlan, options: CliOptions, io: Io): Promise<boolean> {
  // A build changes no host: nothing to confirm.
  if (options.yes || options.json || io.env.CI || !io.ask || plan.hosts.length <= 1 || plan.goal === 'build') return true;
  const { goal, hosts, deploy } = plan;
  if (plan.operation === 'rollback') {
    const how = deploy.rolling ? `rolling in waves of ${deploy.concurrency}` : `at most ${deploy.concurrency} at a time`;
    return io.ask(`${command}: switch ${hosts.length} hosts back (${goal}: ${hosts.join(', ')}), ${how}. Roll back?`);
  }
  const canaries = deploy.canaries.length ? `${deploy.canaries.join(', ')} first, ` : '';
  const how = `${canaries}${deploy.rolling ? `rolling in waves of ${deploy.concurrency}` : `at most ${deploy.concurrency} at a time`}`;
  const reboot = Object.values(deploy.hosts).some((h) => h.reboot) ? ' and reboot' : '';
  return io.ask(`${command}: ${goal}${reboot} ${hosts.length} hosts (${hosts.join(', ')}), seed${plan.builds.length > 1 ? 's' : ''} ${plan.builds.map((b) => preferredSeed(b, plan.coordinator.name)).join(', ')}, ${how}. Deploy?`);
}

/**
 * What must hold before a real run: the report and history directories
 * writable (they are written after it: known now, exit 2). Returns the run
 * history, read once: the stages' ETA and the comparison at the end.
 */
async function readyToRun(options: CliOptions, io: Io): Promise<HistoryEntry[]> {
  for (const dir of [options.reportDir, dirname(historyPathFor(options.reportDir))]) {
    const why = await whyNotWritable(dir);
    if (why) throw new UsageError(`--report-dir ${options.reportDir}: cannot write run reports and history there (${why})`);
  }
  const chalk = colours(io);
  const history = await readHistory(historyPathFor(options.reportDir), (warning) => io.stderr(chalk.yellow(`warning: ${warning}`)));
  if (options.allowUnsigned) io.stderr(chalk.yellow.bold(ALLOW_UNSIGNED_WARNING));
  return history;
}

/** Runs the plan with the lock, the first interrupt stopping it gracefully. */
async function runWithSignals(plan: RunnablePlan, options: Pick<CliOptions, 'json' | 'forceUnlock' | 'interactive'> & { readonly reportDir: string | undefined }, executor: Executor, history: readonly HistoryEntry[], io: Io, commandLine: string): Promise<RunResult> {
  return interruptible(io, {}, (signal) =>
    runPlan(plan, {
      executor,
      signal,
      // The live view would redraw over the --interactive question: plain lines then.
      renderer: options.interactive && !options.json ? 'simple' : chooseRenderer(options.json, io),
      confirmActivation: options.interactive ? askBeforeActivating(io, plan.goal) : undefined,
      colours: colours(io),
      reportDir: options.reportDir,
      history,
      lock: { command: commandLine, forceUnlock: options.forceUnlock },
      notice: (text) => io.stderr(colours(io).yellow(text)),
    }),
  );
}

function chooseRenderer(json: boolean, io: Io): RendererChoice {
  if (json) return 'silent';
  return io.isTTY && !io.env.CI ? 'default' : 'simple';
}

/**
 * The table, timeline and verdict (or the JSON result), the warnings, then
 * how the run ended and where its report is. A failure the task list has
 * shown where it happened (on the row of the host or stage that failed,
 * with its command, exit status and output) is named, not printed again;
 * any other error (the lock, …) is printed in full. Returns the exit code.
 */
export function printResult(result: RunResult, json: boolean, comparison: ReturnType<typeof recentMedians>, io: Io): number {
  const exitCode = result.error ? exitCodeOf(result.error) : ExitCode.ok;
  if (json) {
    io.stdout(deployResultJson(result, exitCode));
    return exitCode;
  }
  const chalk = colours(io);
  io.stdout(`\n${renderReport(result.report, { comparison })}`);
  for (const warning of result.report.warnings ?? []) io.stderr(chalk.yellow.bold(`warning: ${warning}`));
  if (result.error) reportError(result.error, io, shownFailure(result.report));
  if (result.reportPath) io.stdout(chalk.dim(`report: ${result.reportPath}`));
  return exitCode;
}

/**
 * What a failed stage's failure is called at the end, when the task list
 * showed it (a stage failed): the stage, the hosts that failed, the hosts
 * never started. Undefined when no stage failed.
 */
function shownFailure(report: RunResult['report']): string | undefined {
  const stage = report.stages.find((s) => s.outcome === 'failed');
  if (!stage) return undefined;
  const named = (states: readonly string[]) => report.hosts.filter((h) => states.includes(h.state)).map((h) => h.name);
  const failed = named(['failed', 'rolled-back']);
  const notStarted = stage.name === 'deploy' ? named(['not-started']) : [];
  return [
    `${stage.name.replace(/-/g, ' ')} failed${failed.length ? ` on ${failed.join(', ')}` : ''} (shown above)`,
    ...(notStarted.length ? [`not started: ${notStarted.join(', ')}`] : []),
  ].join('; ');
}
