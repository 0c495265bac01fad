/** --dry-run: the plan as text (every command exactly as it would run) or as JSON. */
import type { DeployPlan, PlannedCommand } from './plan.ts';
import { copyToCoordinatorArgv } from './nix/commands.ts';
import { describeTool } from './nix/nixos-rebuild.ts';
import { planPinRoots } from './plan.ts';
import { commandLine } from './stages/failure.ts';

const placeholder = (host: string) => `<toplevel of ${host}>`;

export function renderPlan(plan: DeployPlan): string {
  const { preflight, deploy, waitForCache, inventory } = plan;
  const cmd = (c: Pick<PlannedCommand, 'argv' | 'env'>) => `    $ ${commandLine(c)}`;
  const lines = [
    `plan: ${plan.goal} ${plan.hosts.join(', ')} from ${plan.flake}, seed ${plan.seed}` +
      (plan.onCoordinator ? ` (running on the coordinator ${inventory.coordinator.name})` : ''),
    '',
    '1. preflight',
    `    nixos-rebuild on this machine: ${describeTool(plan.rebuild.tool)}${plan.rebuild.tool.error ? ` (${plan.rebuild.tool.error})` : ''}${plan.rebuild.tool.found ? '' : ' — preflight will fail'}`,
    ...plan.rebuild.problems.map((problem) => `    ✖ ${problem} — preflight will fail`),
    ...preflight.ssh.map((check) => cmd(check.command)),
    `    GET ${preflight.cacheUrl}/nix-cache-info   (expects StoreDir: /nix/store)`,
    '2. evaluate',
    cmd(plan.evaluate),
    `3. seed build (on ${plan.seed} only, nothing built locally)`,
    cmd(plan.seedBuild),
    // A Nix daemon makes the builds itself: only the --builders spec reaches it.
    '    (under a Nix daemon the daemon connects to the builder: its key and host key come from the --builders spec above; NIX_SSHOPTS and ssh.options do not reach it)',
    ...(plan.onCoordinator
      ? []
      : [cmd({ argv: copyToCoordinatorArgv(inventory, plan.hosts.map(placeholder)), env: plan.seedBuild.env })]),
    ...planPinRoots(plan, plan.hosts.map(placeholder)).commands.map(cmd),
    `4. wait for cache (every ≤ 1 s, at most ${Math.round(waitForCache.timeoutMs / 1000)} s; signed by ${inventory.cache.publicKey.split(':')[0]}${waitForCache.allowUnsigned ? '; --allow-unsigned: unsigned or untrusted narinfos ACCEPTED' : ''})`,
    ...plan.hosts.map((host) => `    GET ${waitForCache.cacheUrl}/<hash of ${host}'s toplevel>.narinfo`),
    `5. deploy (${plan.goal}; ${deploy.waves.length > 1 ? 'the seed first, then ' : ''}at most ${deploy.concurrency} at a time)`,
    `  each host: read its generation (${inventory.paths.profile}, ${inventory.paths.currentSystem})` +
      (deploy.magicRollback ? `, arm the magic-rollback watchdog (confirm within ${deploy.confirmTimeoutSeconds} s)` : '') +
      `, nixos-rebuild, health checks, ${deploy.magicRollback ? 'confirm over a new SSH connection' : 'done'}` +
      (deploy.rollback ? '; roll back on failure' : ''),
    ...(deploy.rolling ? [`  rolling: waves of ${deploy.concurrency}; ${deploy.keepGoing ? 'keep going after a failure' : 'the first failure stops the rollout'}`] : []),
    ...deploy.waves.flatMap((wave, i) => [
      `  wave ${i + 1}: ${wave.join(', ')}`,
      ...wave.map((host) => cmd(deploy.commands[host]!)),
    ]),
    `6. report (per stage and host, against the ${inventory.baselineMinutes} min baseline)`,
  ];
  return lines.join('\n');
}

export function planAsJson(plan: DeployPlan): unknown {
  const { inventory: _inventory, ...rest } = plan;
  return rest;
}
