/** Command-line options shared by scripts/deploy.ts and scripts/deploy-all.ts. */
import { UsageError } from '../errors.ts';
import { parseStrict } from './parse.ts';
import type { HostSelector } from '../inventory/select.ts';
import { GOALS, type Goal } from '../nix/commands.ts';
import { SELECTION_HELP, SELECTION_OPTIONS, selectorFrom } from './selection.ts';

export type Command = 'deploy' | 'deploy-all';

export interface CliOptions {
  readonly command: Command;
  /** the hosts named (positional names and @tags, --on, --tag) and left out (--exclude) */
  readonly selector: HostSelector;
  readonly inventory: string;
  readonly flake?: string | undefined;
  readonly goal: Goal;
  readonly seed?: string | undefined;
  readonly concurrency?: number | undefined;
  readonly rolling: boolean;
  readonly batchSize?: number | undefined;
  readonly keepGoing: boolean;
  readonly magicRollback: boolean;
  readonly rollback: boolean;
  readonly confirmTimeoutSeconds?: number | undefined;
  readonly forceUnlock: boolean;
  readonly allowUnsigned: boolean;
  readonly dryRun: boolean;
  /** do not ask before deploying more than one host */
  readonly yes: boolean;
  readonly json: boolean;
  readonly reportDir: string;
  readonly help: boolean;
}

export function usage(command: Command): string {
  const synopsis =
    command === 'deploy'
      ? 'npx tsx scripts/deploy.ts <host|@tag|glob…> [options]      (just nix deploy opi03, just nix deploy @k3s)'
      : 'npx tsx scripts/deploy-all.ts [--on <selector>…] [--exclude <selector>…] [options]';
  const what =
    command === 'deploy'
      ? 'Deploy the named hosts of the inventory in stages (positional selectors, or --on).'
      : 'Deploy every host of the inventory (or those --on selects) in stages.';
  return `${what}
Builds each toplevel once on a seed builder, waits until the binary cache serves it
signed, then runs nixos-rebuild on every host so targets pull from the cache.

Usage: ${synopsis}

Options:
  --inventory <path>   inventory file (default ./hosts.json)
  --flake <ref>        flake reference (default: the inventory's "flake")
  --goal <goal>        switch | boot | test | dry-activate (default switch)
  --seed <host>        builder for the seed build (default: the inventory's "seed")
  --concurrency <n>    hosts deployed at once after the seed (default: all)
${SELECTION_HELP}
${command === 'deploy-all' ? '  --tag <tag>          the same as --on @<tag>\n' : ''}  --rolling            deploy in waves (--batch-size, default 1) with health checks
                       between them; the first failure stops the rollout
  --batch-size <n>     hosts per wave with --rolling (default 1)
  --keep-going         with --rolling: deploy the remaining waves after a failure, fail at the end
  --confirm-timeout <s>  magic rollback: a target reverts unless confirmed within this many seconds
                       after its activation (default 30, or more when the inventory's health
                       checks and settle window may take longer)
  --no-magic-rollback  do not arm the watchdog on the targets
  --no-rollback        leave a host whose activation or health checks failed as it is
  --force-unlock       remove the deploy lock of a dead run first
  --allow-unsigned     accept a cache narinfo that is unsigned or signed by an untrusted
                       key (warned about loudly, recorded in the report)
  --dry-run            print every stage with the exact commands; run nothing
  -y, --yes            do not ask before deploying more than one host (asked only on a
                       terminal, never under CI or --json)
  --json               machine-readable result on stdout
  --report-dir <dir>   where run reports go (default .deploy/runs)
  -h, --help           this help

Exit codes: 0 deployed, 1 a stage failed, 2 usage or inventory error, 130 interrupted.`;
}

export function parseCliArgs(command: Command, argv: readonly string[]): CliOptions {
  const { values, positionals } = parseStrict(argv, {
    inventory: { type: 'string', default: 'hosts.json' },
    flake: { type: 'string' },
    goal: { type: 'string', default: 'switch' },
    seed: { type: 'string' },
    concurrency: { type: 'string' },
    tag: { type: 'string', multiple: true, default: [] },
    ...SELECTION_OPTIONS,
    rolling: { type: 'boolean', default: false },
    'batch-size': { type: 'string' },
    'keep-going': { type: 'boolean', default: false },
    'confirm-timeout': { type: 'string' },
    'no-magic-rollback': { type: 'boolean', default: false },
    'no-rollback': { type: 'boolean', default: false },
    'force-unlock': { type: 'boolean', default: false },
    'allow-unsigned': { type: 'boolean', default: false },
    'dry-run': { type: 'boolean', default: false },
    yes: { type: 'boolean', short: 'y', default: false },
    json: { type: 'boolean', default: false },
    'report-dir': { type: 'string', default: '.deploy/runs' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  const help = values.help ?? false;
  if (!help) {
    if (command === 'deploy' && positionals.length === 0 && (values.on ?? []).length === 0) {
      throw new UsageError('name at least one host, e.g. opi03, @k3s or --on \'opi0*\' (or use deploy-all)');
    }
    if (command === 'deploy-all' && positionals.length > 0) {
      throw new UsageError(`deploy-all takes no host names (got ${positionals.join(' ')}); use --on, or deploy.ts <host…>`);
    }
    if (command === 'deploy' && (values.tag ?? []).length > 0) throw new UsageError('--tag belongs to deploy-all');
  }
  const goal = values.goal ?? 'switch';
  if (!(GOALS as readonly string[]).includes(goal)) throw new UsageError(`--goal must be one of ${GOALS.join(', ')} (got '${goal}')`);
  const concurrency = positiveInteger('--concurrency', values.concurrency);
  const batchSize = positiveInteger('--batch-size', values['batch-size']);
  const confirmTimeoutSeconds = positiveInteger('--confirm-timeout', values['confirm-timeout']);
  if (batchSize !== undefined && !values.rolling) throw new UsageError('--batch-size goes with --rolling');
  if (values['keep-going'] && !values.rolling) throw new UsageError('--keep-going goes with --rolling');
  return {
    command,
    selector: selectorFrom(values, [...positionals, ...(values.tag ?? []).map((tag) => `@${tag}`)]),
    inventory: values.inventory ?? 'hosts.json',
    flake: values.flake,
    goal: goal as Goal,
    seed: values.seed,
    concurrency,
    rolling: values.rolling ?? false,
    batchSize,
    keepGoing: values['keep-going'] ?? false,
    magicRollback: !(values['no-magic-rollback'] ?? false),
    rollback: !(values['no-rollback'] ?? false),
    confirmTimeoutSeconds,
    forceUnlock: values['force-unlock'] ?? false,
    allowUnsigned: values['allow-unsigned'] ?? false,
    dryRun: values['dry-run'] ?? false,
    yes: values.yes ?? false,
    json: values.json ?? false,
    reportDir: values['report-dir'] ?? '.deploy/runs',
    help,
  };
}

/** `value` as a whole number ≥ 1 (undefined when absent); UsageError naming `flag` otherwise. */
export function positiveInteger(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a whole number ≥ 1 (got '${value}')`);
  return n;
}
