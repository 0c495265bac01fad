/**
 * What the entry points share: parse, load, plan, run or print, and map
 * typed errors to exit codes. Nothing here throws past runCli.
 */
import { mkdir, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ExitCode, UsageError } from '../errors.ts';
import { ZxExecutor } from '../exec/zx-executor.ts';
import { loadInventory } from '../inventory/load.ts';
import { flakeRef } from '../inventory/schema.ts';
import { selectHosts } from '../inventory/select.ts';
import { probeRebuildTool } from '../nix/nixos-rebuild.ts';
import { localNixSystem } from '../nix/system.ts';
import { isOnCoordinator, planDeploy } from '../plan.ts';
import { planAsJson, renderPlan } from '../plan-render.ts';
import { recentMedians } from '../report/compare.ts';
import { historyPathFor, readHistory } from '../report/history.ts';
import { renderReport } from '../report/render/text.ts';
import { type RendererChoice, type RunResult, runPlan } from '../run.ts';
import { whyNotWritable } from '../util/writable.ts';
import { type Command, parseCliArgs, usage } from './args.ts';
import { colours } from './colour.ts';
import { errorJson, exitCodeOf, failure, interruptOnSignals, type Io, processIo, reportError, wantsJson } from './io.ts';

function chooseRenderer(json: boolean, io: Io): RendererChoice {
  if (json) return 'silent';
  return io.isTTY && !io.env.CI ? 'default' : 'simple';
}

const ALLOW_UNSIGNED_WARNING =
  'WARNING: --allow-unsigned: waiting for the cache accepts narinfos that are unsigned or signed by another key than ' +
  'cache.publicKey. Targets that check signatures will not substitute those paths and get them copied over SSH instead.';

/**
 * deploy.ts / deploy-all.ts: parse, load, plan, then print the plan
 * (--dry-run) or run it. Returns the exit code (lib/errors.ts ExitCode); never
 * throws. Under --json stdout carries exactly one JSON document, also for
 * errors found while parsing the arguments (see {@link failure}).
 */
export async function runCli(command: Command, argv: readonly string[], io: Io = processIo): Promise<number> {
  const chalk = colours(io);
  let json = wantsJson(argv);
  try {
    const options = parseCliArgs(command, argv);
    json = options.json;
    if (options.help) {
      io.stdout(usage(command));
      return ExitCode.ok;
    }
    if (options.flake !== undefined && !flakeRef.safeParse(options.flake).success) {
      throw new UsageError(`--flake '${options.flake}': must be a flake reference without "#", spaces or shell characters`);
    }
    const inventory = await loadInventory(options.inventory);
    const hosts = selectHosts(
      inventory,
      command === 'deploy' ? { kind: 'names', names: options.hosts } : { kind: 'all', tags: options.tags },
    );
    const executor = new ZxExecutor();
    // Which nixos-rebuild runs here decides its flags: read its --help before planning (also for --dry-run).
    const rebuildTool = await probeRebuildTool(executor, inventory.nixosRebuild.command, inventory.timeouts.connectSeconds * 1000);
    const runId = `${Date.now().toString(36)}-${process.pid}`;
    // Made (0700, never reused) only for a real run; --dry-run shows the same path.
    const sshControlDir = join(tmpdir(), `avalanche-ssh-${runId}`);
    const plan = planDeploy(inventory, hosts, {
      goal: options.goal,
      flake: options.flake,
      seed: options.seed,
      concurrency: options.concurrency,
      onCoordinator: isOnCoordinator(inventory, hostname()),
      allowUnsigned: options.allowUnsigned,
      rolling: options.rolling,
      batchSize: options.batchSize,
      keepGoing: options.keepGoing,
      magicRollback: options.magicRollback,
      rollback: options.rollback,
      confirmTimeoutSeconds: options.confirmTimeoutSeconds,
      runId,
      sshControlDir,
      rebuildTool,
      localSystem: localNixSystem(),
    });
    if (options.dryRun) {
      io.stdout(json ? JSON.stringify({ dryRun: true, plan: planAsJson(plan) }, null, 2) : renderPlan(plan));
      return ExitCode.ok;
    }

    // The report and history are written after the run: a directory they cannot go to is known now.
    for (const dir of [options.reportDir, dirname(historyPathFor(options.reportDir))]) {
      const why = await whyNotWritable(dir);
      if (why) throw new UsageError(`--report-dir ${options.reportDir}: cannot write run reports and history there (${why})`);
    }
    // Read once, before the run: the stages' ETA and the comparison at the end.
    const history = await readHistory(historyPathFor(options.reportDir), (warning) => io.stderr(chalk.yellow(`warning: ${warning}`)));
    if (options.allowUnsigned) io.stderr(chalk.yellow.bold(ALLOW_UNSIGNED_WARNING));
    const controller = new AbortController();
    const release = interruptOnSignals(controller, io);
    let result: RunResult;
    await mkdir(sshControlDir, { mode: 0o700 });
    try {
      result = await runPlan(plan, {
        executor,
        signal: controller.signal,
        renderer: chooseRenderer(json, io),
        reportDir: options.reportDir,
        history,
        lock: { command: `${command} ${argv.join(' ')}`, forceUnlock: options.forceUnlock },
        notice: (text) => io.stderr(chalk.yellow(text)),
      });
    } finally {
      release();
      await rm(sshControlDir, { recursive: true, force: true });
    }
    const exitCode = result.error ? exitCodeOf(result.error) : ExitCode.ok;
    if (json) {
      io.stdout(JSON.stringify({ outcome: result.outcome, exitCode, reportPath: result.reportPath, ...errorJson(result.error), report: result.report }, null, 2));
    } else {
      io.stdout(`\n${renderReport(result.report, { comparison: recentMedians(history, plan) })}`);
      if (result.reportPath) io.stdout(chalk.dim(`report: ${result.reportPath}`));
      for (const warning of result.report.warnings ?? []) io.stderr(chalk.yellow.bold(`warning: ${warning}`));
      if (result.error) reportError(result.error, io);
    }
    return exitCode;
  } catch (error) {
    return failure(error, json, io);
  }
}
