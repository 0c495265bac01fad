/** Command-line options shared by scripts/deploy.ts and scripts/deploy-all.ts. */
import { parseArgs } from 'node:util';
import { UsageError } from '../errors.ts';
import { GOALS, type Goal } from '../nix/commands.ts';

export type Command = 'deploy' | 'deploy-all';

export interface CliOptions {
  readonly command: Command;
  readonly hosts: readonly string[];
  readonly tags: readonly string[];
  readonly inventory: string;
  readonly flake?: string | undefined;
  readonly goal: Goal;
  readonly seed?: string | undefined;
  readonly concurrency?: number | undefined;
  readonly dryRun: boolean;
  readonly json: boolean;
  readonly reportDir: string;
  readonly help: boolean;
}

export function usage(command: Command): string {
  const synopsis =
    command === 'deploy'
      ? 'npx tsx scripts/deploy.ts <host…> [options]      (just nix deploy <host…>)'
      : 'npx tsx scripts/deploy-all.ts [--tag <tag>…] [options]';
  const what =
    command === 'deploy'
      ? 'Deploy the named hosts of the inventory in stages.'
      : 'Deploy every host of the inventory (or those with a tag) in stages.';
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
${command === 'deploy-all' ? '  --tag <tag>          only hosts with this tag (repeatable)\n' : ''}  --dry-run            print every stage with the exact commands; run nothing
  --json               machine-readable result on stdout
  --report-dir <dir>   where run reports go (default .deploy/runs)
  -h, --help           this help

Exit codes: 0 deployed, 1 a stage failed, 2 usage or inventory error, 130 interrupted.`;
}

export function parseCliArgs(command: Command, argv: readonly string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        inventory: { type: 'string', default: 'hosts.json' },
        flake: { type: 'string' },
        goal: { type: 'string', default: 'switch' },
        seed: { type: 'string' },
        concurrency: { type: 'string' },
        tag: { type: 'string', multiple: true, default: [] },
        'dry-run': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        'report-dir': { type: 'string', default: '.deploy/runs' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
  const { values, positionals } = parsed;
  const help = values.help ?? false;
  if (!help) {
    if (command === 'deploy' && positionals.length === 0) throw new UsageError('name at least one host, e.g. opi03 (or use deploy-all)');
    if (command === 'deploy-all' && positionals.length > 0) {
      throw new UsageError(`deploy-all takes no host names (got ${positionals.join(' ')}); use --tag, or deploy.ts <host…>`);
    }
    if (command === 'deploy' && (values.tag ?? []).length > 0) throw new UsageError('--tag belongs to deploy-all');
  }
  const goal = values.goal ?? 'switch';
  if (!(GOALS as readonly string[]).includes(goal)) throw new UsageError(`--goal must be one of ${GOALS.join(', ')} (got '${goal}')`);
  let concurrency: number | undefined;
  if (values.concurrency !== undefined) {
    concurrency = Number(values.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError(`--concurrency must be a whole number ≥ 1 (got '${values.concurrency}')`);
  }
  return {
    command,
    hosts: positionals,
    tags: values.tag ?? [],
    inventory: values.inventory ?? 'hosts.json',
    flake: values.flake,
    goal: goal as Goal,
    seed: values.seed,
    concurrency,
    dryRun: values['dry-run'] ?? false,
    json: values.json ?? false,
    reportDir: values['report-dir'] ?? '.deploy/runs',
    help,
  };
}
