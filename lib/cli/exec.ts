/**
 * `scripts/exec.ts`: one command on the selected hosts, in parallel. Parse,
 * select, plan (lib/plan/exec.ts), then print the plan (--dry-run) or run it
 * (lib/ops/exec.ts): each output line as it comes, prefixed by its host;
 * then every host's output grouped, with its exit status, and a tally (or one
 * JSON document). Exit 0 when every host succeeded, 1 when one did not, 2 for
 * usage and inventory errors, 130 interrupted — never a stack trace.
 */
import { parseArgs } from 'node:util';
import type { ChalkInstance } from 'chalk';
import { z } from 'zod';
import { ExitCode, UsageError } from '../errors.ts';
import { commandLine } from '../exec/describe.ts';
import type { Executor, OutputStream } from '../exec/types.ts';
import { ZxExecutor } from '../exec/zx-executor.ts';
import { loadInventory } from '../inventory/load.ts';
import { type HostSelector, resolveSelection } from '../inventory/select.ts';
import { allSucceeded, type ExecHostResult, execHostResultSchema, runExec } from '../ops/exec.ts';
import { DEFAULT_CONCURRENCY } from '../plan/concurrency.ts';
import { EXEC_DEFAULT_TIMEOUT_SECONDS, type ExecPlan, execPlanSchema, planExec } from '../plan/exec.ts';
import { SSH_FAILED, SUDO_HINT } from '../remote/host.ts';
import { positiveInteger } from './args.ts';
import { colours } from './colour.ts';
import { failure, interruptible, type Io, processIo, wantsJson } from './io.ts';
import { parseStrict } from './parse.ts';
import { SELECTION_HELP, SELECTION_OPTIONS, selectorFrom, thisMachine } from './selection.ts';

export interface ExecCliOptions {
  readonly selector: HostSelector;
  /** the words after `--` */
  readonly argv: readonly string[];
  readonly sudo: boolean;
  readonly concurrency?: number | undefined;
  readonly timeoutSeconds?: number | undefined;
  readonly inventory: string;
  readonly dryRun: boolean;
  readonly json: boolean;
  readonly help: boolean;
}

/** exec's --help text. */
export function execUsage(): string {
  return `Run one command on the selected hosts over SSH, in parallel, as each host's deploy
user (with --sudo: as root, through sudo -n). The command starts after -- (or at
the first word that is not an option of exec's; just drops the first --), and each of
its words reaches the remote program as one argument, exactly as typed: no shell
re-splits or expands it on the way (for a shell line, say so: -- sh -c '… || …').
Each output line is printed as it arrives, prefixed by its host ("|" stdout, "!" stderr);
then each host's output grouped under its exit status, and a tally.

Usage: npx tsx scripts/exec.ts --on <selector> [options] -- <command> [<argument>…]
       (just nix exec --on @k3s -- systemctl status k3s)

Options:
${SELECTION_HELP}
                       --on is required: --on '*' runs on every host
  --sudo               run the command as root (sudo -n --: fails rather than prompting)
  --concurrency <n>    hosts running it at once (default ${DEFAULT_CONCURRENCY})
  --timeout <s>        bound on the command on each host, in seconds (default ${EXEC_DEFAULT_TIMEOUT_SECONDS}):
                       coreutils timeout stops it there (exit 124). Ctrl-C stops the ssh
                       sessions here; what they started on the hosts runs on until it ends
                       or reaches this bound (sshd signals no command without a terminal)
  --dry-run            print the exact ssh command line for each host; run nothing
  --json               one JSON document on stdout at the end (schemas/exec.schema.json)
  --inventory <path>   inventory file (default ./hosts.json)
  -h, --help           this help

Exit codes: 0 every host succeeded; 1 a host did not: the command exited non-zero, timed
out, or the host was unreachable (ssh exits 255 when it cannot connect or log in, or the
connection fails); 2 usage or inventory error; 130 interrupted.`;
}

const EXEC_OPTIONS = {
  ...SELECTION_OPTIONS,
  sudo: { type: 'boolean', default: false },
  concurrency: { type: 'string' },
  timeout: { type: 'string' },
  'dry-run': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  inventory: { type: 'string', default: 'hosts.json' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/**
 * Where exec's own options end and the command begins: at `--`, or else at
 * the first word that is neither an option nor an option's value (as
 * ssh(1), env(1) and timeout(1) read theirs). The second matters because
 * `just` drops the first `--` of a recipe's arguments: `just nix exec --on
 * @k3s -- systemctl status k3s` reaches this script without it.
 */
function splitAtCommand(argv: readonly string[]): { flags: string[]; command: string[] } {
  const { tokens } = parseArgs({ args: [...argv], options: EXEC_OPTIONS, strict: false, allowPositionals: true, tokens: true });
  const start = tokens.find((token) => token.kind === 'positional' || token.kind === 'option-terminator');
  if (!start) return { flags: [...argv], command: [] };
  const command = argv.slice(start.kind === 'option-terminator' ? start.index + 1 : start.index);
  if (start.kind === 'positional') {
    // `exec --on @k3s systemctl restart k3s --dry-run` must not restart k3s: without `--`, one of exec's own options
    // after the command is a mistake far likelier than an argument meant for it.
    // Up to a `--` of the command's own: what follows that is the command's, surely.
    const beforeItsTerminator = command.includes('--') ? command.slice(0, command.indexOf('--')) : command;
    const own = beforeItsTerminator.find((word) => Object.hasOwn(EXEC_OPTIONS, word.replace(/^--/, '').replace(/=.*$/, '')) && word.startsWith('--'));
    if (own) {
      throw new UsageError(`${own.replace(/=.*$/, '')} after the command would reach it, not exec: put exec's options before the command; to pass it to the command, end exec's options with -- (through just: -- --)`);
    }
  }
  return { flags: argv.slice(0, start.index), command };
}

/**
 * exec's options and the command (see {@link splitAtCommand}). Throws
 * UsageError for an unknown flag, a missing command or `--on` (unless
 * --help), or a bad number.
 */
export function parseExecArgs(argv: readonly string[]): ExecCliOptions {
  const { flags, command } = splitAtCommand(argv);
  const { values } = parseStrict(flags, EXEC_OPTIONS, false);
  const help = values.help ?? false;
  if (!help) {
    if (command.length === 0) throw new UsageError('name the command to run after --, e.g. exec --on @k3s -- systemctl status k3s');
    if ((values.on ?? []).length === 0) {
      throw new UsageError("name the hosts with --on (e.g. --on @k3s, --on opi01,opi02, --on 'opi0*'); every host only when asked: --on '*'");
    }
  }
  return {
    selector: selectorFrom(values),
    argv: command,
    sudo: values.sudo ?? false,
    concurrency: positiveInteger('--concurrency', values.concurrency),
    timeoutSeconds: positiveInteger('--timeout', values.timeout),
    inventory: values.inventory ?? 'hosts.json',
    dryRun: values['dry-run'] ?? false,
    json: values.json ?? false,
    help,
  };
}

const execDryRunSchema = z.object({ dryRun: z.literal(true), plan: execPlanSchema });

const execResultSchema = z.object({
  /** failed: a host did not succeed; interrupted: Ctrl-C */
  outcome: z.enum(['succeeded', 'failed', 'interrupted']),
  /** the command's exit status: 0, 1 or 130 */
  exitCode: z.number().int().min(0).max(255),
  argv: z.array(z.string()),
  sudo: z.boolean(),
  /** from the first ssh started to the last ended, in ms */
  durationMs: z.number(),
  /** in inventory order */
  hosts: z.array(execHostResultSchema),
});

/** What `exec --json` prints: the plan under --dry-run, else the hosts' results (errors before a run: schemas/error.schema.json). */
export const execOutputSchema = z.union([execDryRunSchema, execResultSchema]).meta({
  title: 'avalanche-deploy exec --json',
  description:
    'What exec.ts prints on stdout under --json: { dryRun: true, plan } with --dry-run, else each host\'s exit status and output; errors before a run are schemas/error.schema.json.',
});

// Not red: red says failure.
const HOST_COLOURS = ['cyan', 'magenta', 'blue', 'green', 'yellow'] as const;

/** How one host's lines are told apart: its name in its own colour (`padded` to the longest name, for the live lines). */
function hostLabels(plan: ExecPlan, chalk: ChalkInstance, padded: boolean): Map<string, string> {
  const width = padded ? Math.max(...plan.hosts.map((h) => h.name.length)) : 0;
  return new Map(plan.hosts.map((h, i) => [h.name, chalk[HOST_COLOURS[i % HOST_COLOURS.length]!](h.name.padEnd(width))]));
}

/** A live output line: `<host> | <line>` (stdout) or `<host> ! <line>` (stderr). */
export function liveLine(label: string, line: string, stream: OutputStream, chalk: ChalkInstance): string {
  return stream === 'stdout' ? `${label} ${chalk.dim('|')} ${line}` : `${label} ${chalk.red('!')} ${line}`;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** A host's end, in words: `exit 0`, `exit 255: ssh could not connect…`, `timed out after 600 s`, `not started (interrupted)`. */
export function hostStatus(result: ExecHostResult, plan: Pick<ExecPlan, 'timeoutSeconds'>): string {
  switch (result.outcome) {
    case 'interrupted':
      return result.started ? 'interrupted' : 'not started (interrupted)';
    case 'timed-out':
      return `${result.exitCode === null ? '' : `exit ${result.exitCode}: `}timed out after ${plan.timeoutSeconds} s`;
    case 'unreachable':
      return `exit ${SSH_FAILED}: ssh failed (no connection or login, or it dropped), or the command exited 255`;
    default:
      return result.exitCode === null ? 'ended by a signal' : `exit ${result.exitCode}`;
  }
}

function lines(text: string): string[] {
  return text === '' ? [] : text.replace(/\n$/, '').split('\n').map((line) => line.replace(/\r$/, ''));
}

/** Every host's output grouped under `── <host> (<status>, <time>) ──`: stdout, then stderr (marked `!`), then a hint if one helps. */
export function renderGroups(plan: ExecPlan, results: readonly ExecHostResult[], chalk: ChalkInstance): string {
  const labels = hostLabels(plan, chalk, false);
  return results
    .flatMap((result) => {
      const ok = result.outcome === 'succeeded';
      const head = `── ${labels.get(result.host)!} (${(ok ? chalk.green : chalk.red)(hostStatus(result, plan))}, ${seconds(result.durationMs)}) ──`;
      const out = lines(result.stdout);
      const err = lines(result.stderr).map((line) => `${chalk.red('!')} ${line}`);
      const sudoRefused = plan.sudo && /sudo: (a password is required|a terminal is required)/.test(result.stderr);
      const body = out.length + err.length === 0 ? [chalk.dim(result.started ? '(no output)' : '(not run)')] : [...out, ...err];
      return [head, ...body, ...(sudoRefused ? [chalk.yellow(`hint: ${SUDO_HINT}`)] : [])];
    })
    .join('\n');
}

/** The one-line tally: `exec: 3 hosts, 2 succeeded, 1 failed (opi02) in 1.2 s`. */
export function renderTally(results: readonly ExecHostResult[], durationMs: number, chalk: ChalkInstance): string {
  const parts = [`${results.length} host${results.length === 1 ? '' : 's'}`];
  const by = (outcome: ExecHostResult['outcome']) => results.filter((r) => r.outcome === outcome);
  const succeeded = by('succeeded').length;
  parts.push((succeeded === results.length ? chalk.green : (text: string) => text)(`${succeeded} succeeded`));
  for (const outcome of ['failed', 'unreachable', 'timed-out', 'interrupted'] as const) {
    const hosts = by(outcome);
    if (hosts.length > 0) parts.push(chalk.red(`${hosts.length} ${outcome} (${hosts.map((r) => r.host).join(', ')})`));
  }
  return `exec: ${parts.join(', ')} in ${seconds(durationMs)}`;
}

/** --dry-run: who runs what, then each host's exact ssh command line (copy-pasteable). */
export function renderExecPlan(plan: ExecPlan): string {
  const who = `${plan.sudo ? 'as root (sudo -n)' : "as each host's deploy user"}${plan.hosts.some((h) => h.target.local) ? ' (the machine this runs on: here, as this user, without ssh)' : ''}`;
  return [
    `exec ${commandLine({ argv: plan.argv })} on ${plan.hosts.map((h) => h.name).join(', ')}`,
    `  ${who}, at most ${plan.concurrency} at a time, bounded by ${plan.timeoutSeconds} s on each host (then ssh here after ${Math.round(plan.hosts[0]!.command.timeoutMs / 1000)} s)`,
    ...plan.hosts.flatMap((h) => [`  ${h.name}:`, `    $ ${commandLine(h.command)}`]),
  ].join('\n');
}

/** What a test puts in place of the real machine: the executor and the clock (ms). */
export interface ExecDependencies {
  readonly executor?: Executor;
  readonly now?: () => number;
}

/**
 * scripts/exec.ts: runs the command on the selected hosts and prints their
 * output live and grouped (or one JSON document). Returns the exit code (0
 * every host succeeded, 1 one did not, 2 usage or inventory error, 130
 * interrupted); never throws.
 */
export async function runExecCli(argv: readonly string[], io: Io = processIo, deps: ExecDependencies = {}): Promise<number> {
  const chalk = colours(io);
  const now = deps.now ?? Date.now;
  let json = wantsJson(argv);
  try {
    const options = parseExecArgs(argv);
    json = options.json;
    if (options.help) {
      io.stdout(execUsage());
      return ExitCode.ok;
    }
    const inventory = await loadInventory(options.inventory);
    const plan = planExec(inventory, resolveSelection(inventory, options.selector), { ...options, here: thisMachine(inventory) });
    if (options.dryRun) {
      io.stdout(json ? JSON.stringify(execDryRunSchema.parse({ dryRun: true, plan }), null, 2) : renderExecPlan(plan));
      return ExitCode.ok;
    }
    const labels = hostLabels(plan, chalk, true);
    const startedAt = now();
    let interrupted = false;
    const stopping = 'stopping the ssh sessions (what they started on the hosts runs on until it ends or reaches --timeout), starting no new host';
    const results = await interruptible(io, { stopping }, (signal) => {
      signal.addEventListener('abort', () => (interrupted = true));
      return runExec(plan, {
        executor: deps.executor ?? new ZxExecutor(),
        signal,
        onLine: json ? undefined : (host, line, stream) => io.stdout(liveLine(labels.get(host)!, line, stream, chalk)),
        onHostEnd: json
          ? undefined
          : (result) => io.stdout(chalk.dim(`${labels.get(result.host)!} ${result.outcome === 'succeeded' ? '✔' : '✖'} ${hostStatus(result, plan)}, ${seconds(result.durationMs)}`)),
      });
    });
    const durationMs = now() - startedAt;
    const exitCode = interrupted ? ExitCode.interrupted : allSucceeded(results) ? ExitCode.ok : ExitCode.stageFailed;
    if (json) {
      const outcome = interrupted ? 'interrupted' : exitCode === ExitCode.ok ? 'succeeded' : 'failed';
      io.stdout(JSON.stringify(execResultSchema.parse({ outcome, exitCode, argv: plan.argv, sudo: plan.sudo, durationMs, hosts: results }), null, 2));
    } else {
      io.stdout(`\n${renderGroups(plan, results, chalk)}\n${renderTally(results, durationMs, chalk)}`);
      if (interrupted) io.stderr(chalk.yellow('exec: interrupted'));
    }
    return exitCode;
  } catch (error) {
    return failure(error, json, io);
  }
}
