/**
 * `scripts/doctor.ts`: parse, load the inventory, run every check, print
 * ✔/✖/⚠ as results come in (or JSON at the end). Exit 0 when nothing
 * failed, 1 when a check failed, 2 for usage and inventory errors — mapped
 * like the deploy's (lib/cli/io.ts), without stack traces.
 */
import { hostname } from 'node:os';
import { doctorChecks } from '../doctor/checks/index.ts';
import { createDoctorContext } from '../doctor/context.ts';
import { renderResult, renderSummary, resultsAsJson } from '../doctor/render.ts';
import { healthy, runChecks } from '../doctor/run.ts';
import { ExitCode, InterruptedError } from '../errors.ts';
import type { Executor } from '../exec/types.ts';
import { ZxExecutor } from '../exec/zx-executor.ts';
import { loadInventory } from '../inventory/load.ts';
import { type HostSelector, resolveSelection } from '../inventory/select.ts';
import { isOnCoordinator } from '../remote/fleet.ts';
import { colours } from './colour.ts';
import { failure, interruptible, type Io, processIo, reportError, wantsJson } from './io.ts';
import { parseStrict } from './parse.ts';
import { SELECTION_HELP, SELECTION_OPTIONS, selectorFrom, thisMachine } from './selection.ts';

export interface DoctorOptions {
  readonly inventory: string;
  /** whose builder and target checks run (positional names and @tags, --on, --exclude); the fleet-wide checks always run */
  readonly selector: HostSelector;
  readonly json: boolean;
  readonly help: boolean;
}

/** The doctor's --help text. */
export function doctorUsage(): string {
  return `Check the fleet the way an operator otherwise does by hand: the cache and its signing key, every builder and target over
SSH, the GC roots on the cache host, that this machine cannot build the
builders' systems itself, and which nixos-rebuild it has (bash-era or
nixos-rebuild-ng, the flags it accepts, the deploy method a deploy would use). Each check prints ✔/✖/⚠, what it tried and, when
something is wrong, a hint.

Usage: npx tsx scripts/doctor.ts [<host|@tag|glob…>] [options]      (just nix doctor)

Options:
  --inventory <path>   inventory file (default ./hosts.json)
${SELECTION_HELP}
                       (the builder and target checks of those hosts; the cache, GC-root
                       and local checks always run)
  --json               machine-readable results on stdout
  -h, --help           this help

Exit codes: 0 no check failed (warnings allowed), 1 a check failed, 2 usage or inventory error.`;
}

/** The doctor's options; throws UsageError for an unknown flag. Positional arguments are host selectors, as --on. */
export function parseDoctorArgs(argv: readonly string[]): DoctorOptions {
  const options = {
    inventory: { type: 'string' as const, default: 'hosts.json' },
    json: { type: 'boolean' as const, default: false },
    help: { type: 'boolean' as const, short: 'h', default: false },
    ...SELECTION_OPTIONS,
  };
  const { values, positionals } = parseStrict(argv, options);
  return { inventory: values.inventory ?? 'hosts.json', selector: selectorFrom(values, positionals), json: values.json ?? false, help: values.help ?? false };
}

/** What a test puts in place of the real machine: the executor, this host's name and the clock (ms since the epoch). */
export interface DoctorDependencies {
  readonly executor?: Executor;
  readonly hostname?: string;
  readonly now?: number;
}

/**
 * scripts/doctor.ts: runs every check and prints each result as it comes in
 * (or all as JSON at the end). Returns the exit code (0 healthy, 1 a check
 * failed, 2 usage or inventory error, 130 interrupted); never throws.
 */
export async function runDoctorCli(argv: readonly string[], io: Io = processIo, deps: DoctorDependencies = {}): Promise<number> {
  const chalk = colours(io);
  let json = wantsJson(argv);
  try {
    const options = parseDoctorArgs(argv);
    json = options.json;
    if (options.help) {
      io.stdout(doctorUsage());
      return ExitCode.ok;
    }
    const inventory = await loadInventory(options.inventory);
    const hosts = resolveSelection(inventory, options.selector);
    const results = await interruptible(io, { stopping: 'stopping the running checks' }, (signal) => {
      const here = thisMachine(inventory, deps.hostname ?? hostname());
      const env = { inventory, executor: deps.executor ?? new ZxExecutor(), onCoordinator: isOnCoordinator(inventory, deps.hostname ?? hostname()), here, signal };
      return runChecks(doctorChecks(inventory, hosts, here), createDoctorContext(env, deps.now ?? Date.now()), (result) => {
        if (!json) io.stdout(renderResult(result, chalk));
      });
    });
    const exitCode = healthy(results) ? ExitCode.ok : ExitCode.stageFailed;
    io.stdout(json ? JSON.stringify(resultsAsJson(results, exitCode), null, 2) : `\n${renderSummary(results, chalk)}`);
    return exitCode;
  } catch (error) {
    // The deploy's wording for an interruption speaks of hosts left untouched; the doctor changes nothing.
    return failure(error, json, io, (e) => (e instanceof InterruptedError ? io.stderr('doctor: interrupted') : reportError(e, io)));
  }
}
