/** Command-line options shared by scripts/deploy.ts, scripts/deploy-all.ts and scripts/rollback.ts (a rollback runs the deploy's own steps). */
import { UsageError } from '../errors.ts';
import { parseStrict } from './parse.ts';
import type { HostSelector } from '../inventory/select.ts';
import type { DeployStageChoices } from '../plan/assemble.ts';
import { DEFAULT_CONCURRENCY } from '../plan/concurrency.ts';
import { DEPLOY_GOALS, type DeployGoal } from '../plan/types.ts';
import { SELECTION_HELP, SELECTION_OPTIONS, selectorFrom } from './selection.ts';

export type Command = 'deploy' | 'deploy-all' | 'rollback';

/** What a rollback goes back to, as asked: the previous generation, --to <n>, or --run <id>. */
export type RollbackRequest = { readonly kind: 'previous' } | { readonly kind: 'generation'; readonly number: number } | { readonly kind: 'run'; readonly id: string };

export interface CliOptions {
  readonly command: Command;
  /** the hosts named (positional names and @tags, --on, --tag) and left out (--exclude) */
  readonly selector: HostSelector;
  readonly inventory: string;
  readonly flake?: string | undefined;
  /** a nixos-rebuild goal, or `build` (deploy and deploy-all only) */
  readonly goal: DeployGoal;
  readonly seed?: string | undefined;
  readonly concurrency?: number | undefined;
  readonly rolling: boolean;
  readonly batchSize?: number | undefined;
  /** --canary: hosts deployed first, alone; the others only if they deploy well */
  readonly canaries: string[];
  readonly keepGoing: boolean;
  readonly magicRollback: boolean;
  readonly rollback: boolean;
  readonly confirmTimeoutSeconds?: number | undefined;
  readonly forceUnlock: boolean;
  readonly allowUnsigned: boolean;
  readonly dryRun: boolean;
  /** do not ask before deploying more than one host */
  readonly yes: boolean;
  /** each host's closure diff, beside its other steps (--no-diff: false); with --dry-run, build and compare, activate nothing */
  readonly diff: boolean;
  /** with --dry-run: --diff was given (build, fetch and compare) */
  readonly dryRunDiff: boolean;
  /** show each host's diff and ask before activating it */
  readonly interactive: boolean;
  /** goal boot: reboot each host into the new boot default and check it booted it */
  readonly reboot: boolean;
  readonly json: boolean;
  readonly reportDir: string;
  readonly help: boolean;
  /** rollback only */
  readonly rollbackTo?: RollbackRequest | undefined;
}

export function usage(command: Command): string {
  if (command === 'rollback') return rollbackUsage();
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
signed, then puts the built toplevel on every host so targets pull from the cache: with
nixos-rebuild --store-path where it takes it, else itself (copy, profile, activation);
the inventory's deploy.method chooses (nixos-rebuild | direct).

Usage: ${synopsis}

Options:
  --inventory <path>   inventory file (default ./hosts.json)
  --flake <ref>        flake reference (default: the inventory's "flake")
  --goal <goal>        switch | boot | test | dry-activate (default switch), or build:
                       preflight, evaluate, seed build, pin and wait for the cache, then
                       stop — every toplevel built once and served signed, no host touched
                       (no target is asked, no deploy lock is taken)
  --reboot             with --goal boot: reboot each host (in waves with --rolling), wait
                       for it to come back (timeouts.rebootSeconds, default 600), check it
                       booted the new generation (/run/booted-system), run the health checks
  --seed <host>        preferred builder of its system's seed build (default: the inventory's
                       "seed"; the other systems' builders, or the coordinator, build theirs)
  --concurrency <n>    hosts deployed at once (default ${DEFAULT_CONCURRENCY})
  --canary <host>      deploy <host> first, alone (repeatable); the others only if it deployed
                       well. Default: none (every host as soon as it can), or with --rolling
                       the seeds
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
  --diff               with --dry-run: also build, fetch onto each target and show what
                       it would change (nix store diff-closures); activates nothing
  --no-diff            skip the closure diff each host otherwise gets
  --interactive        show each host's closure diff and ask before activating it
                       (a terminal only; never under CI or --json)
  -y, --yes            do not ask before deploying more than one host (asked only on a
                       terminal, never under CI or --json)
  --json               machine-readable result on stdout
  --report-dir <dir>   where run reports go (default .deploy/runs)
  -h, --help           this help

Exit codes: 0 deployed (with --goal build: built and served), 1 a stage failed, 2 usage or
inventory error, 130 interrupted.`;
}

function rollbackUsage(): string {
  return `Switch hosts back to a generation they have: the previous one (as nixos-rebuild
--rollback), generation <n> (--to), or what a recorded run found on each host it changed
(--run). The deploy's own steps run around the switch: the deploy lock, preflight of the
targets, the magic-rollback watchdog, activation as root (sudo -n), health checks with a
login over a new connection beside them, confirmation, a rollback of the rollback when it fails, the report
and the history. Nothing is evaluated or built.

Usage: npx tsx scripts/rollback.ts <host|@tag|glob…> [--to <n>] [options]   (just nix rollback opi03)
       npx tsx scripts/rollback.ts --run <id> [options]        (every host run <id> changed)

Options:
  --inventory <path>   inventory file (default ./hosts.json)
${SELECTION_HELP}
                       (with --run: only those of the run's hosts)
  --to <n>             go to system generation <n> (see: just nix generations)
  --run <id>           revert every host run <id> changed (a unique prefix of its id, or
                       "latest"; its report in --report-dir) to the system it ran before
  --goal <goal>        switch | boot | test (default switch)
  --reboot             with --goal boot: reboot each host into the chosen generation, wait
                       for it to come back, check it booted it, run the health checks
  --concurrency <n>    hosts switched at once (default ${DEFAULT_CONCURRENCY})
  --rolling            in waves (--batch-size, default 1) with health checks between them
  --batch-size <n>     hosts per wave with --rolling (default 1)
  --keep-going         with --rolling: go on after a failed wave, fail at the end
  --confirm-timeout <s>  magic rollback: a host reverts unless confirmed within this many
                       seconds after its activation (default as for deploy)
  --no-magic-rollback  do not arm the watchdog on the targets
  --no-rollback        leave a host whose switch or health checks failed as it is
  --force-unlock       remove the deploy lock of a dead run first
  --dry-run            print every step with the exact commands; run nothing
  --diff               with --dry-run: also show what each switch would change
  --no-diff            skip the closure diff each host otherwise gets
  --interactive        show each host's closure diff and ask before switching it
  -y, --yes            do not ask before switching more than one host back
  --json               machine-readable result on stdout
  --report-dir <dir>   where run reports go and --run looks (default .deploy/runs)
  -h, --help           this help

Exit codes: 0 rolled back, 1 a stage failed, 2 usage or inventory error, 130 interrupted.`;
}

export function parseCliArgs(command: Command, argv: readonly string[]): CliOptions {
  const { values, positionals } = parseStrict(argv, {
    inventory: { type: 'string', default: 'hosts.json' },
    flake: { type: 'string' },
    goal: { type: 'string', default: 'switch' },
    seed: { type: 'string' },
    concurrency: { type: 'string' },
    canary: { type: 'string', multiple: true, default: [] },
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
    to: { type: 'string' },
    run: { type: 'string' },
    diff: { type: 'boolean', default: false },
    'no-diff': { type: 'boolean', default: false },
    interactive: { type: 'boolean', default: false },
    reboot: { type: 'boolean', default: false },
  });
  if (values.diff && values['no-diff']) throw new UsageError('--diff and --no-diff: give one');
  if (values.diff && !values['dry-run']) throw new UsageError('--diff goes with --dry-run (a deploy shows each host\'s closure diff anyway; --no-diff skips it)');
  if (values.interactive && (values['dry-run'] || values['no-diff'] || values.json)) {
    throw new UsageError('--interactive shows each host\'s closure diff and asks on the terminal: not with --dry-run, --no-diff or --json');
  }
  const help = values.help ?? false;
  const rollbackTo = command === 'rollback' && !help ? rollbackRequest(values, positionals) : undefined;
  if (command !== 'rollback') {
    for (const flag of ['to', 'run'] as const) if (values[flag] !== undefined) throw new UsageError(`--${flag} belongs to rollback`);
  } else {
    if ((values.canary ?? []).length) throw new UsageError('--canary belongs to deploy and deploy-all (a rollback goes in one wave, or --rolling)');
    for (const flag of ['flake', 'seed', 'allow-unsigned', 'tag'] as const) {
      const value = values[flag];
      if (value !== undefined && value !== false && !(Array.isArray(value) && value.length === 0)) throw new UsageError(`--${flag}: a rollback builds nothing (it switches to a generation the host has)`);
    }
  }
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
  if (goal === 'build') refuseWithBuild(command, values);
  if (goal === 'build' && (values.canary ?? []).length) throw new UsageError('--goal build deploys nothing: --canary does not apply');
  const goals: readonly string[] = command === 'rollback' ? ROLLBACK_GOALS : DEPLOY_GOALS;
  if (!goals.includes(goal)) throw new UsageError(`--goal must be one of ${goals.join(', ')} (got '${goal}')`);
  if (values.reboot && goal !== 'boot') {
    throw new UsageError(`--reboot goes with --goal boot (got ${goal}): boot sets the new generation as the boot default, which the reboot then starts; switch and test activate it without one`);
  }
  const concurrency = positiveInteger('--concurrency', values.concurrency);
  const batchSize = positiveInteger('--batch-size', values['batch-size']);
  const confirmTimeoutSeconds = positiveInteger('--confirm-timeout', values['confirm-timeout']);
  if (batchSize !== undefined && !values.rolling) throw new UsageError('--batch-size goes with --rolling');
  if (values['keep-going'] && !values.rolling) throw new UsageError('--keep-going goes with --rolling');
  return {
    command,
    selector: selectorFrom(values, [...positionals, ...(values.tag ?? []).map((tag) => (tag.startsWith('@') ? tag : `@${tag}`))]),
    inventory: values.inventory ?? 'hosts.json',
    flake: values.flake,
    goal: goal as DeployGoal,
    seed: values.seed,
    concurrency,
    rolling: values.rolling ?? false,
    batchSize,
    canaries: values.canary ?? [],
    keepGoing: values['keep-going'] ?? false,
    magicRollback: !(values['no-magic-rollback'] ?? false),
    rollback: !(values['no-rollback'] ?? false),
    confirmTimeoutSeconds,
    forceUnlock: values['force-unlock'] ?? false,
    allowUnsigned: values['allow-unsigned'] ?? false,
    dryRun: values['dry-run'] ?? false,
    yes: values.yes ?? false,
    diff: !(values['no-diff'] ?? false),
    dryRunDiff: values.diff ?? false,
    interactive: values.interactive ?? false,
    reboot: values.reboot ?? false,
    json: values.json ?? false,
    reportDir: values['report-dir'] ?? '.deploy/runs',
    help,
    rollbackTo,
  };
}

/**
 * The choices a deploy and a rollback plan alike take from the command line:
 * pace, safety steps, the closure diff. One mapping, so that no flag is
 * parsed and then forgotten by one of the planners (lib/plan/assemble.ts
 * PlanOptions, lib/plan/rollback.ts RollbackPlanOptions): a choice added
 * there and not here does not compile.
 */
export function deployStageChoices(options: CliOptions): DeployStageChoices {
  const choices = {
    concurrency: options.concurrency,
    rolling: options.rolling,
    batchSize: options.batchSize,
    keepGoing: options.keepGoing,
    magicRollback: options.magicRollback,
    rollback: options.rollback,
    confirmTimeoutSeconds: options.confirmTimeoutSeconds,
    diff: options.diff,
    interactive: options.interactive,
    reboot: options.reboot,
    // --dry-run --diff: build and compare, activate nothing.
    diffOnly: options.dryRun && options.dryRunDiff,
  } satisfies Record<Exclude<keyof DeployStageChoices, 'reuseConnections'>, unknown>;
  return choices;
}

/** The options that shape a deploy stage or its lock: a build (no deploy stage, no lock) refuses them rather than ignore them. */
const DEPLOY_ONLY_FLAGS = [
  'concurrency',
  'rolling',
  'batch-size',
  'keep-going',
  'confirm-timeout',
  'no-magic-rollback',
  'no-rollback',
  'force-unlock',
  'diff',
  'no-diff',
  'interactive',
] as const;

/** --goal build: a rollback refuses it (it builds nothing), a deploy refuses the options only a deploy stage uses. */
function refuseWithBuild(command: Command, values: Partial<Record<(typeof DEPLOY_ONLY_FLAGS)[number], string | boolean>>): void {
  if (command === 'rollback') throw new UsageError('--goal build: a rollback builds nothing (it switches to a generation the host has); use deploy --goal build');
  const given = DEPLOY_ONLY_FLAGS.filter((flag) => values[flag] !== undefined && values[flag] !== false);
  if (given.length) throw new UsageError(`--goal build deploys nothing and takes no deploy lock: ${given.map((f) => `--${f}`).join(', ')} ${given.length > 1 ? 'do' : 'does'} not apply`);
}

/** A rollback switches to a generation: dry-activate has nothing to check there. */
const ROLLBACK_GOALS = ['switch', 'boot', 'test'] as const;

function rollbackRequest(values: { readonly to?: string | undefined; readonly run?: string | undefined; readonly on?: readonly string[] | undefined; readonly help?: boolean | undefined }, positionals: readonly string[]): RollbackRequest {
  if (values.to !== undefined && values.run !== undefined) throw new UsageError('--to and --run: give one (--run goes back to what that run found on each host)');
  if (values.run !== undefined) {
    if (!/^[A-Za-z0-9:._-]+$/.test(values.run)) throw new UsageError(`--run '${values.run}': a run id (or a unique prefix of one, or "latest")`);
    return { kind: 'run', id: values.run };
  }
  if (!values.help && positionals.length === 0 && (values.on ?? []).length === 0) {
    throw new UsageError("name the hosts to roll back, e.g. opi03, @k3s or --on 'opi0*' (or --run <id> for a whole run)");
  }
  if (values.to === undefined) return { kind: 'previous' };
  const number = /^\d+$/.test(values.to) ? Number(values.to) : Number.NaN;
  if (!Number.isSafeInteger(number) || number < 1) throw new UsageError(`--to must be a generation number ≥ 1 (got '${values.to}')`);
  return { kind: 'generation', number };
}

/** `value` as a whole number ≥ 1 (undefined when absent); UsageError naming `flag` otherwise. */
export function positiveInteger(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  // Digits only: Number() would also take 0x3, 1e1 and ' 2'.
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${flag} must be a whole number ≥ 1 (got '${value}')`);
  return n;
}
