/**
 * --dry-run: the plan as text, every command exactly as it will run
 * (placeholders `{{…}}` stand for what only the run knows), or as JSON
 * validated by the same schema that documents it.
 */
import { cacheInfoUrl } from '../cache/client.ts';
import { isPlaceholderKey } from '../cache/hints.ts';
import { commandLine } from '../exec/describe.ts';
import type { HostClosureDiff } from '../nix/closure-diff.ts';
import { describeDeployMethod } from '../nix/deploy-method.ts';
import { describeTool, rebuildHelpArgv } from '../nix/nixos-rebuild.ts';
import { sshDestination } from '../remote/host.ts';
import { PLACEHOLDER } from './placeholders.ts';
import { activationName, type DeployPlan, dryRunOutputSchema, type HostPlan, type PlannedCommand, type RollbackPlan, type RollbackTarget, type RunnablePlan } from './types.ts';
import { isLastAloneWave, preferredSeed } from './waves.ts';

const cmd = (c: Pick<PlannedCommand, 'argv' | 'env'>, indent = '    ') => `${indent}$ ${commandLine(c)}`;
const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;

export function renderPlan(plan: RunnablePlan): string {
  return plan.operation === 'rollback' ? renderRollbackPlan(plan) : renderDeployPlan(plan);
}

/** Where the coordinator's commands run, in words. */
function coordinatorWhere(plan: RunnablePlan): string {
  return plan.coordinator.place.kind === 'local' ? `on the coordinator ${plan.coordinator.name}` : `${plan.coordinator.name} over SSH as ${sshDestination(plan.coordinator.place.host)}`;
}

/** The deploy lock's three commands (none for a build: lib/plan/assemble.ts planDeploy says why). */
function renderLock(plan: RunnablePlan): string[] {
  if (!plan.lock) return ['no deploy lock: a build changes no host, so it neither waits for a deploy nor blocks one'];
  return [
    `first: take the deploy lock ${plan.lock.path} on ${plan.coordinator.name}`,
    cmd(plan.lock.acquire),
    '    released at the end:',
    cmd(plan.lock.release),
    '    with --force-unlock, removed first:',
    cmd(plan.lock.remove),
  ];
}

/** The deploy stage's pace, waves and every host's steps. */
function renderDeployStage(plan: RunnablePlan, heading: string, waves: readonly (readonly string[])[], method: readonly string[] = []): string[] {
  const { deploy } = plan;
  return [
    heading,
    ...method,
    ...(deploy.rolling ? [`  rolling: waves of ${deploy.concurrency}; ${deploy.keepGoing ? 'keep going after a failure' : 'the first failure stops the rollout'}`] : []),
    ...waves.map((wave, i) => `  wave ${i + 1}: ${wave.join(', ')}`),
    ...plan.hosts.flatMap((host) => renderHost(deploy.hosts[host]!, deploy, activationName(plan))),
  ];
}

function describeTarget(to: RollbackTarget): string {
  if (to.kind === 'previous') return 'the generation before the profile\'s (as nixos-rebuild --rollback)';
  if (to.kind === 'generation') return `generation ${to.number}`;
  return `the newest generation of ${to.toplevel} (what run ${to.run} found there)`;
}

function renderRollbackPlan(plan: RollbackPlan): string {
  return [
    `plan: roll back ${plan.hosts.join(', ')} (${plan.goal}), the lock ${coordinatorWhere(plan)}; nothing is evaluated or built`,
    `placeholders, filled at run time: ${PLACEHOLDER.toplevel('host')} (the toplevel of the generation chosen on the host), ${PLACEHOLDER.previousProfileLink} ${PLACEHOLDER.previousSystem} (what the host ran before), ${PLACEHOLDER.runId} ${PLACEHOLDER.sshControlDir} ${PLACEHOLDER.lockHolder} ${PLACEHOLDER.lockHolderId} (this run's)`,
    '',
    ...renderLock(plan),
    '1. preflight',
    '    every target logs in and becomes root as the root steps will',
    ...plan.preflight.targets.map((check) => cmd(check.command)),
    '2. resolve: read each host\'s generations and choose the one it goes back to',
    ...plan.hosts.flatMap((host) => {
      const { list, to } = plan.resolve.hosts[host]!;
      return [`  ${host}: ${describeTarget(to)}`, cmd(list)];
    }),
    ...renderDeployStage(plan, `3. switch (${plan.goal}; at most ${plan.deploy.concurrency} at a time)`, plan.waves),
    '4. report (per stage and host)',
  ].join('\n');
}

/** nixos-rebuild as probed when planning, and what will fail with it; nothing for a build (it runs none). */
function renderRebuildTool(rebuild: DeployPlan['preflight']['rebuild'], method: DeployPlan['deployMethod']): string[] {
  if (method?.kind === 'direct') return ['    nixos-rebuild: not run (deploy method direct), so not checked'];
  if (!rebuild) return [];
  const { tool, problems } = rebuild;
  return [
    `    nixos-rebuild on this machine (read from ${commandLine({ argv: rebuildHelpArgv(tool.command) })} when planning — the one command --dry-run runs): ${describeTool(tool)}${tool.error ? ` (${tool.error})` : ''}${tool.found ? '' : ' — preflight will fail'}`,
    ...problems.map((problem) => `    ✖ ${problem} — preflight will fail`),
  ];
}

function renderDeployPlan(plan: DeployPlan): string {
  const { preflight, deploy, waitForCache } = plan;
  const where = coordinatorWhere(plan);
  const seedOf = (b: DeployPlan['builds'][number]) => `${preferredSeed(b, plan.coordinator.name)}${b.on === 'here' ? ' (here)' : ''}`;
  const seedText = plan.builds.length === 1 ? `seed ${seedOf(plan.builds[0]!)}` : `seeds ${plan.builds.map((b) => `${b.system}: ${seedOf(b)}`).join(', ')}`;
  const build = !plan.stages.includes('deploy');
  const lines = [
    build
      ? `plan: build ${plan.hosts.join(', ')} from ${plan.flake}, ${seedText} (${where}): build, pin and wait for the cache, then stop — no host is deployed`
      : `plan: ${plan.goal} ${plan.hosts.join(', ')} from ${plan.flake}, ${seedText} (${where})`,
    `placeholders, filled at run time: ${PLACEHOLDER.toplevel('host')} ${PLACEHOLDER.toplevelName('host')} ${PLACEHOLDER.toplevelHash('host')} (the evaluated toplevel, its base name and hash), ${PLACEHOLDER.previousProfileLink} ${PLACEHOLDER.previousSystem} (what the host ran before), ${PLACEHOLDER.runId} ${PLACEHOLDER.sshControlDir} ${PLACEHOLDER.lockHolder} ${PLACEHOLDER.lockHolderId} (this run's)`,
    '',
    ...renderLock(plan),
    '1. preflight',
    ...renderRebuildTool(preflight.rebuild, plan.deployMethod),
    ...plan.builds
      .filter((b) => b.on === 'builders')
      .flatMap((b) => [
        `    ${b.system}'s builders answer (those that do build; the first, the seed: ${b.builders.map((x) => x.host).join(', ')})`,
        ...b.builders.map((x) => cmd(x.check)),
      ]),
    `    Nix on this machine trusts ${preflight.nixTrust.user} (asked in order until one answer tells)`,
    ...[preflight.nixTrust.storeInfo, preflight.nixTrust.storePing, preflight.nixTrust.configShow, preflight.nixTrust.showConfig, preflight.nixTrust.groups].map((c) => cmd(c)),
    ...(build
      ? ['    no target is asked: a build needs none of them (it works while a target is down)']
      : ['    every target logs in and becomes root as the root steps will', ...preflight.targets.map((check) => cmd(check.command))]),
    `    GC roots can be made in ${preflight.gcRootDir}`,
    cmd(preflight.gcRootDirWritable),
    `    the cache signs with ${preflight.cacheKey.publicKey.split(':')[0]}: the newest pinned paths' narinfos are checked`,
    ...(isPlaceholderKey(preflight.cacheKey.publicKey) ? [`    ✖ cache.publicKey is the placeholder shipped in hosts.json — preflight will fail`] : []),
    cmd(preflight.cacheKey.listRoots),
    `    GET ${preflight.cacheUrl}/<hash of each of the newest pinned paths>.narinfo`,
    `    GET ${cacheInfoUrl(preflight.cacheUrl)}   (expects StoreDir: /nix/store)`,
    `2. evaluate (${plan.evaluate.length > 1 ? `${plan.evaluate.length} evaluations one after the other, ` : ''}from the start of the run, beside preflight; each host once)`,
    ...plan.evaluate.flatMap((e) => [`    ${e.hosts.join(', ')}:`, cmd(e.command)]),
    `3. seed build (one per system, at the same time${plan.builds.some((b) => b.on === 'builders') ? '; on builders nothing is built locally' : ''})`,
    ...plan.builds.flatMap((b) => [
      b.on === 'here'
        ? `    ${b.system} (${b.hosts.join(', ')}): here, natively on ${plan.coordinator.name}`
        : `    ${b.system} (${b.hosts.join(', ')}): on those of ${b.builders.map((x) => x.host).join(', ')} that answered, ${PLACEHOLDER.builders(b.system)} = their entries:`,
      ...b.builders.map((x) => `      ${x.spec}`),
      ...(b.headStart
        ? [`    ${b.headStart.hosts.join(', ')} as soon as evaluated (a head start for what the toplevels share)${b.on === 'builders' ? `, on the seed alone once it answered (${PLACEHOLDER.seedBuilder(b.system)}: its entry)` : ''}:`, cmd(b.headStart.build), `    then the others, once evaluated:`]
        : []),
      cmd(b.build),
    ]),
    // A Nix daemon makes the builds itself: only the --builders spec reaches it.
    '    (under a Nix daemon the daemon connects to the builder: its key and host key come from the --builders spec above; NIX_SSHOPTS and ssh.options do not reach it)',
    ...(plan.builds.some((b) => b.builders.some((x) => x.closeConnection))
      ? [
          "    each builder's one connection (opened by its login above, or by the first build's ssh where Nix must check a pinned host key) is reused by the builds and closed once they ended:",
          ...plan.builds.flatMap((b) => b.builders.flatMap((x) => (x.closeConnection ? [cmd(x.closeConnection)] : []))),
        ]
      : []),
    ...(plan.copyToCoordinator ? [cmd(plan.copyToCoordinator)] : []),
    ...plan.pin.commands.map((c) => cmd(c)),
    `4. wait for cache (every ≤ ${seconds(waitForCache.pollMaxMs)}, at most ${seconds(waitForCache.timeoutMs)}; signed by ${waitForCache.publicKey.split(':')[0]}${waitForCache.allowUnsigned ? '; --allow-unsigned: unsigned or untrusted narinfos ACCEPTED' : ''})`,
    ...waitForCache.narinfos.map((n) => `    GET ${n.url}`),
    ...(build
      ? ['the run stops after the cache wait: nothing is deployed, no host is touched', '5. report (per stage; what was built, where and how long; each host built or not; no baseline: nothing was deployed)']
      : [
          ...renderDeployStage(plan, `5. deploy (${plan.goal}; ${deployOrder(plan)}at most ${deploy.concurrency} at a time)`, plan.waves, renderDeployMethod(plan)),
          `6. report (per stage and host, against the ${plan.baselineMinutes} min baseline)`,
        ]),
  ];
  return lines.join('\n');
}

/** The deploy method and why it was chosen (lib/nix/deploy-method.ts). */
function renderDeployMethod(plan: DeployPlan): string[] {
  const method = plan.deployMethod;
  return method ? [`  method: ${describeDeployMethod(method)} — ${method.why}`] : [];
}

/** How the waves go: the canaries first, when there are any; the cache host, then this machine, last. */
function deployOrder(plan: DeployPlan): string {
  const { canaries } = plan.deploy;
  const first = plan.waves.length > 1 && canaries.length ? [`${canaries.join(', ')} first (canar${canaries.length > 1 ? 'ies' : 'y'}: the others only if ${canaries.length > 1 ? 'they deploy' : 'it deploys'} well)`] : [];
  const last = plan.waves
    .filter((_, index) => isLastAloneWave(plan, index))
    .map(([host]) => (plan.deploy.hosts[host!]!.target.local ? `${host} (this machine, no ssh)` : `${host} (the cache host)`));
  return [...first, ...(last.length ? [`${last.join(' then ')} last`] : [])].map((part) => `${part}, `).join('');
}

function renderHost(host: HostPlan, deploy: DeployPlan['deploy'], activation: string): string[] {
  const step = (what: string, command: PlannedCommand | undefined) => (command ? [`    ${what}`, cmd(command, '      ')] : []);
  return [
    `  ${host.name}:`,
    ...step('read its generation', host.probe),
    ...step(`compare its closure with what it runs (nix store diff-closures)${deploy.diffOnly ? ' — and stop: nothing is activated' : deploy.interactive ? ', show it and ask before activating' : ', beside the steps below'}`, host.diff),
    ...step('copy the closure (the target substitutes from its caches what it can)', host.copy),
    ...step(`arm the magic-rollback watchdog (reverts unless confirmed within ${deploy.confirmTimeoutSeconds} s of the activation)${host.armSetsProfile ? ', then set the system profile (a new generation), in the same round trip' : ''}`, host.arm),
    ...step('set the system profile (a new generation)', host.setProfile),
    ...step(activation === 'switch-to-configuration' ? 'activate (switch-to-configuration, in a transient unit where systemd runs)' : activation, host.rebuild),
    ...(host.reboot
      ? [
          ...step(`reboot into the new boot default: leave ${host.reboot.marker} (/run is new every boot), systemctl reboot (the session may end with 255)`, host.reboot.command),
          `    wait for it to come back (at most ${seconds(host.reboot.waitMs)}, asked every ${seconds(host.reboot.pollIntervalMs)} over a new connection): the marker gone, a booted system, not starting`,
          cmd(host.reboot.poll, '      '),
          `    it must have booted ${host.reboot.expectBooted} (${host.reboot.bootedSystem}); if not, the boot default is set back to what it runs`,
        ]
      : []),
    ...(host.health
      ? [
          `    health checks, every one in each round (tried ${host.health.retries + 1}×, ${seconds(host.health.intervalMs)} apart, until all pass in one; then held for ${seconds(host.health.settleMs)})`,
          ...host.health.checks.map((check) => (check.kind === 'http' ? `      GET ${check.url} answers ${check.status}` : `      ${check.name}: ${commandLine(check)}`)),
          ...(host.health.round ? [`      the command checks, one after the other in one command on the target, within ${seconds(host.health.round.timeoutMs)}:`, cmd(host.health.round, '        ')] : []),
        ]
      : []),
    ...step('log in over a new SSH connection, beside the health checks (a host the activation left unreachable is not confirmed)', host.freshLogin),
    ...step(host.target.local ? 'confirm (here)' : 'confirm, once the checks held and the new login worked', host.confirm),
    ...step('on failure, roll back', host.rollback),
    ...(host.rollback ? [] : [`    on failure: no rollback (${deploy.rollback ? 'nothing to roll back for this goal' : '--no-rollback'})`]),
    ...step('once it ended, close the reused connection', host.closeConnection),
  ];
}

/** What `--dry-run --json` prints: the plan, checked against its published schema. */
export function dryRunJson(plan: RunnablePlan, diffs?: Readonly<Record<string, HostClosureDiff>>): string {
  return JSON.stringify(dryRunOutputSchema.parse({ dryRun: true, plan, ...(diffs ? { diffs } : {}) }), null, 2);
}
