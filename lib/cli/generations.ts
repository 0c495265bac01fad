/**
 * `scripts/generations.ts`: each selected host's system generations, as
 * `nixos-rebuild list-generations` shows them there, read over SSH in
 * parallel (lib/ops/generations.ts). Exit 0 when every host answered, 1 when
 * one did not, 2 for usage and inventory errors, 130 interrupted.
 */
import type { ChalkInstance } from 'chalk';
import { z } from 'zod';
import { ExitCode, InterruptedError } from '../errors.ts';
import { commandLine } from '../exec/describe.ts';
import type { Executor } from '../exec/types.ts';
import { ZxExecutor } from '../exec/zx-executor.ts';
import { loadInventory } from '../inventory/load.ts';
import { allAnswered, type HostGenerationsResult, hostGenerationsResultSchema, runGenerations } from '../ops/generations.ts';
import { DEFAULT_CONCURRENCY } from '../plan/concurrency.ts';
import { type GenerationsPlan, generationsPlanSchema, planGenerations } from '../plan/generations.ts';
import type { SystemGeneration } from '../remote/generations.ts';
import { describeReach } from '../remote/host.ts';
import { textTable } from '../report/render/table.ts';
import { positiveInteger } from './args.ts';
import { colours } from './colour.ts';
import { failure, interruptible, type Io, processIo, reportError, wantsJson } from './io.ts';
import { parseStrict } from './parse.ts';
import { SELECTION_HELP, SELECTION_OPTIONS, selectorFrom, thisMachine } from './selection.ts';

/** What `generations --json` prints: every selected host, in inventory order, listed or failed. */
export const generationsOutputSchema = z.object({ hosts: z.array(hostGenerationsResultSchema) });

/** What `generations --dry-run --json` prints: the plan, nothing run. */
export const generationsDryRunSchema = z.object({ dryRun: z.literal(true), plan: generationsPlanSchema });

/** schemas/generations.schema.json: either answer of `generations --json`. */
export const generationsJsonSchema = z.union([generationsOutputSchema, generationsDryRunSchema]).meta({
  title: 'avalanche-deploy generations --json',
  description:
    'What generations.ts prints on stdout under --json: each selected host\'s system generations (or why it did not answer); ' +
    'with --dry-run, the plan instead. Errors before anything runs are schemas/error.schema.json.',
});

export function generationsUsage(): string {
  return `List each host's NixOS system generations, read over SSH as its deploy user (no
root needed): number, date, toplevel store path, and which one is running
(/run/current-system), which the host booted (/run/booted-system) and which the
bootloader starts by default (the system profile's link). Hosts are asked in
parallel; one that does not answer is shown as such and the others are listed.

Usage: npx tsx scripts/generations.ts [options] [host|@tag|glob ...]      (just nix generations)

Hosts named without a flag count as --on. Without any, every host of the inventory.

Options:
  --inventory <path>   inventory file (default ./hosts.json)
${SELECTION_HELP}
  --concurrency <n>    hosts asked at once (default ${DEFAULT_CONCURRENCY})
  --json               one JSON document on stdout (schemas/generations.schema.json)
  --dry-run            print the plan (the ssh command per host) and run nothing
  -h, --help           this help

Exit codes: 0 every host answered, 1 a host did not, 2 usage or inventory error, 130 interrupted.`;
}

export interface GenerationsOptions {
  readonly inventory: string;
  readonly on: readonly string[];
  readonly exclude: readonly string[];
  readonly hosts: readonly string[];
  readonly concurrency?: number | undefined;
  readonly json: boolean;
  readonly dryRun: boolean;
  readonly help: boolean;
}

/** The command line's options; throws UsageError for an unknown flag or a bad value. */
export function parseGenerationsArgs(argv: readonly string[]): GenerationsOptions {
  const options = {
    inventory: { type: 'string', default: 'hosts.json' },
    ...SELECTION_OPTIONS,
    concurrency: { type: 'string' },
    json: { type: 'boolean', default: false },
    'dry-run': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  } as const;
  const { values, positionals } = parseStrict(argv, options);
  return {
    inventory: values.inventory ?? 'hosts.json',
    on: values.on ?? [],
    exclude: values.exclude ?? [],
    hosts: positionals,
    concurrency: positiveInteger('--concurrency', values.concurrency),
    json: values.json ?? false,
    dryRun: values['dry-run'] ?? false,
    help: values.help ?? false,
  };
}

/** `YYYY-MM-DD HH:MM:SS` in this machine's time zone, as nixos-rebuild list-generations prints a build date. */
export function localDateTime(iso: string): string {
  const d = new Date(iso);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

function flags(g: SystemGeneration): string {
  return [g.current && 'current', g.booted && 'booted', g.bootDefault && 'boot default'].filter(Boolean).join(', ');
}

/** One host's listing or failure as text: a heading, then its generations as a table (or why it did not answer). */
export function renderHostGenerations(result: HostGenerationsResult, destination: string, chalk: ChalkInstance): string {
  const heading = chalk.bold(result.host) + chalk.dim(` (${destination})`);
  if (!result.ok) {
    return [`${heading}: ${chalk.red(`did not answer: ${result.error.status}`)}`, ...result.error.outputTail.map((line) => chalk.dim(`  | ${line}`))].join('\n');
  }
  const lines = [heading];
  if (result.generations.length === 0) lines.push('  no system generations (no system profile: never deployed)');
  else {
    const rows = result.generations.map((g) => [String(g.number), g.createdAt ? localDateTime(g.createdAt) : '?', g.toplevel, flags(g)]);
    const [header, ...body] = textTable([{ header: 'generation', align: 'right' }, { header: 'date' }, { header: 'toplevel' }, { header: 'flags' }], rows);
    lines.push(chalk.dim(`  ${header}`), ...body.map((row, i) => (result.generations[i]!.current ? chalk.green(`  ${row}`) : `  ${row}`)));
  }
  // What runs or was booted without being one of the profile's generations (nixos-rebuild test, or a generation since deleted).
  const listed = new Set(result.generations.map((g) => g.toplevel));
  if (result.currentSystem && !listed.has(result.currentSystem)) lines.push(chalk.yellow(`  running ${result.currentSystem}: not a generation of the system profile`));
  if (result.bootedSystem && !listed.has(result.bootedSystem)) lines.push(chalk.yellow(`  booted ${result.bootedSystem}: not a generation of the system profile`));
  if (result.generations.length > 0 && result.profileGeneration === undefined) lines.push(chalk.yellow('  the system profile points at none of its generations'));
  return lines.join('\n');
}

/** The closing line: how many hosts answered, and which did not. */
export function renderSummary(results: readonly HostGenerationsResult[], chalk: ChalkInstance): string {
  const failed = results.filter((r) => !r.ok).map((r) => r.host);
  if (failed.length === 0) return chalk.green(`generations: ${results.length} of ${results.length} hosts answered`);
  return chalk.red(`generations: ${results.length - failed.length} of ${results.length} hosts answered; no answer from ${failed.join(', ')}`);
}

/** --dry-run's text: each host and the exact command that lists it. */
export function renderGenerationsPlan(plan: GenerationsPlan): string {
  const seconds = Math.round((plan.hosts[0]?.command.timeoutMs ?? 0) / 1000);
  return [
    `plan: list the system generations of ${plan.hosts.map((h) => h.name).join(', ')} (at most ${plan.concurrency} at a time, each bounded to ${seconds} s; nothing changes on the hosts)`,
    ...plan.hosts.flatMap((h) => [`  ${h.name} (${h.target.local ? '' : 'as '}${describeReach(h.target)}):`, `    $ ${commandLine(h.command)}`]),
  ].join('\n');
}

export interface GenerationsDependencies {
  readonly executor?: Executor;
}

/**
 * scripts/generations.ts. Text: each host as soon as it and every host before
 * it (inventory order) have answered, then a summary line. Returns the exit
 * code; never throws.
 */
export async function runGenerationsCli(argv: readonly string[], io: Io = processIo, deps: GenerationsDependencies = {}): Promise<number> {
  const chalk = colours(io);
  let json = wantsJson(argv);
  try {
    const options = parseGenerationsArgs(argv);
    json = options.json;
    if (options.help) {
      io.stdout(generationsUsage());
      return ExitCode.ok;
    }
    const inventory = await loadInventory(options.inventory);
    const plan = planGenerations(inventory, selectorFrom(options, options.hosts), { concurrency: options.concurrency, here: thisMachine(inventory) });
    if (options.dryRun) {
      io.stdout(json ? JSON.stringify(generationsDryRunSchema.parse({ dryRun: true, plan }), null, 2) : renderGenerationsPlan(plan));
      return ExitCode.ok;
    }

    // Printed in plan order: a host waits for the ones before it.
    const ended: (HostGenerationsResult | undefined)[] = [];
    let printed = 0;
    const print = (result: HostGenerationsResult, index: number) => {
      ended[index] = result;
      while (!json && ended[printed]) {
        const host = plan.hosts[printed]!;
        io.stdout(`${renderHostGenerations(ended[printed]!, describeReach(host.target), chalk)}\n`);
        printed += 1;
      }
    };
    const results = await interruptible(io, { stopping: 'stopping the listing' }, (signal) =>
      runGenerations(plan, { executor: deps.executor ?? new ZxExecutor(), signal, onResult: print }),
    );
    io.stdout(json ? JSON.stringify(generationsOutputSchema.parse({ hosts: results }), null, 2) : renderSummary(results, chalk));
    return allAnswered(results) ? ExitCode.ok : ExitCode.stageFailed;
  } catch (error) {
    return failure(error, json, io, (e) => (e instanceof InterruptedError ? io.stderr('generations: interrupted') : reportError(e, io)));
  }
}
