/**
 * How the deploy stage puts a built toplevel on a host, chosen once per run
 * from the inventory's `deploy.method` and what the preflight probe found
 * of the configured nixos-rebuild (lib/nix/nixos-rebuild.ts):
 *   - `store-path`: `nixos-rebuild <goal> --store-path <toplevel>` (recent
 *     nixos-rebuild-ng): the built toplevel, no evaluation, no build.
 *   - `direct`: the orchestrator runs nixos-rebuild's own steps itself — copy
 *     the closure (the target substituting from its caches), set the system
 *     profile, activate in a transient unit (lib/nix/commands.ts).
 *   - `flake`: `nixos-rebuild <goal> --flake <ref>#<host>`, only when the
 *     inventory asks for nixos-rebuild and it has no --store-path: it
 *     evaluates the host's configuration again, in its own process.
 */
import { z } from 'zod';
import { DEPLOY_METHODS } from '../inventory/schema.ts';
import { describeTool, type RebuildTool } from './nixos-rebuild.ts';

/** The inventory's choices (`deploy.method`). */
export type InventoryDeployMethod = (typeof DEPLOY_METHODS)[number];

export const deployMethodSchema = z.object({
  /** what the deploy stage runs per host */
  kind: z.enum(['store-path', 'flake', 'direct']),
  /** what the inventory's deploy.method asked for; absent: chosen by the probe */
  requested: z.enum(DEPLOY_METHODS).optional(),
  /** why: the inventory's choice and the probe result that settled it */
  why: z.string(),
  /** true only for `flake`: each host's configuration is evaluated again in the deploy stage */
  evaluatesAgain: z.boolean(),
});
export type DeployMethod = z.infer<typeof deployMethodSchema>;

/** The probed tool takes `--store-path` (recent nixos-rebuild-ng). */
export function acceptsStorePath(tool: RebuildTool): boolean {
  return tool.found && tool.flags.includes('--store-path');
}

/**
 * The deploy method for `tool` (as probed here) and the inventory's
 * `requested` method. Default: nixos-rebuild with --store-path when it takes
 * it, else direct — also when there is no nixos-rebuild at all here (a CI
 * runner on another distribution), which then fails nothing. An explicit
 * `nixos-rebuild` without --store-path keeps --flake (and says it evaluates
 * again); an explicit `nixos-rebuild` that is not found stays nixos-rebuild,
 * so preflight fails on it.
 */
export function chooseDeployMethod(tool: RebuildTool, requested?: InventoryDeployMethod): DeployMethod {
  const what = describeTool(tool);
  const storePath = acceptsStorePath(tool);
  const base = requested ? { requested } : {};
  if (requested === 'direct') {
    return { kind: 'direct', ...base, why: 'deploy.method is direct: the orchestrator copies the closure, sets the system profile and activates', evaluatesAgain: false };
  }
  if (storePath) {
    const by = requested ? 'deploy.method is nixos-rebuild and' : 'probed:';
    return { kind: 'store-path', ...base, why: `${by} ${what} accepts --store-path: it deploys the built toplevel, no evaluation`, evaluatesAgain: false };
  }
  if (requested === 'nixos-rebuild') {
    const lacks = tool.found ? `${what} has no --store-path` : `${what}`;
    return { kind: 'flake', ...base, why: `deploy.method is nixos-rebuild and ${lacks}: --flake, so each host's configuration is evaluated again`, evaluatesAgain: true };
  }
  const probed = tool.found ? `${what} has no --store-path` : `${what}`;
  return { kind: 'direct', why: `probed: ${probed}: the orchestrator copies the closure, sets the system profile and activates (nothing evaluated again)`, evaluatesAgain: false };
}

/**
 * What nixos-rebuild-ng refuses beside `--store-path` ("--store-path cannot
 * be used with --flake, --file, or --attr"; "--store-path and --rollback are
 * mutually exclusive"): named in nixosRebuild.extraArgs, preflight fails on
 * them before anything runs.
 */
const REFUSED_WITH_STORE_PATH = ['--flake', '--file', '-f', '--attr', '-A', '--rollback'];

/** The problems of `method` with the inventory's nixosRebuild.extraArgs (preflight fails on them, as on the flags' own). */
export function methodProblems(method: DeployMethod, extraArgs: readonly string[]): string[] {
  if (method.kind !== 'store-path') return [];
  const refused = extraArgs.filter((arg) => REFUSED_WITH_STORE_PATH.includes(arg.split('=')[0]!));
  return refused.map((flag) => `nixosRebuild.extraArgs: ${flag.split('=')[0]} cannot go with --store-path (nixos-rebuild-ng refuses it): remove it, or set deploy.method to direct`);
}

/** Whether a method runs the configured nixos-rebuild (and so needs it, and its flags, in preflight). */
export function runsNixosRebuild(method: DeployMethod): boolean {
  return method.kind !== 'direct';
}

/** One line for people: `direct`, `nixos-rebuild --store-path`, `nixos-rebuild --flake (evaluates again)`. */
export function describeDeployMethod(method: DeployMethod): string {
  return method.kind === 'direct' ? 'direct' : method.kind === 'store-path' ? 'nixos-rebuild --store-path' : 'nixos-rebuild --flake (evaluates each host again)';
}
