/**
 * The plan as plain data: what a deploy will run, stage by stage, every
 * command with its bound, assembled once by lib/plan/assemble.ts before
 * anything runs. Values known only at run time (the built toplevels, the
 * generation a host had, this run's id) are placeholders that execution
 * fills (lib/plan/placeholders.ts). No inventory, options or functions
 * inside: the plan can be printed (--dry-run), compared and stored; its
 * JSON Schema is generated from these zod schemas (schemas/dry-run.schema.json).
 */
import { z } from 'zod';
import { hostClosureDiffSchema } from '../nix/closure-diff.ts';
import { GOALS } from '../nix/commands.ts';
import { deployMethodSchema } from '../nix/deploy-method.ts';
import { rebuildToolSchema } from '../nix/nixos-rebuild.ts';
import { remoteHostSchema } from '../remote/host.ts';

export const STAGES = ['preflight', 'resolve', 'evaluate', 'seed-build', 'wait-for-cache', 'deploy', 'report'] as const;
export type StageName = (typeof STAGES)[number];

/** What a run does: build and deploy new toplevels, or switch hosts back to toplevels they have. */
export const OPERATIONS = ['deploy', 'rollback'] as const;
export type Operation = (typeof OPERATIONS)[number];

/** Each operation's stages, in order (`report` is the run's own, after them); a plan's `stages` say which of them its run has. */
export const OPERATION_STAGES: Readonly<Record<Operation, readonly StageName[]>> = {
  deploy: ['preflight', 'evaluate', 'seed-build', 'wait-for-cache', 'deploy', 'report'],
  rollback: ['preflight', 'resolve', 'deploy', 'report'],
};

/**
 * What a deploy run ends with: a nixos-rebuild goal on every host, or
 * `build` — preflight, evaluate, the seed build, pinning and the cache wait,
 * then the report: every toplevel built once, pinned on the coordinator and
 * served signed, and no host touched (a prebuild, e.g. in CI).
 */
export const DEPLOY_GOALS = [...GOALS, 'build'] as const;
export type DeployGoal = (typeof DEPLOY_GOALS)[number];

/** The stages of a deploy with `goal`: a build stops after the cache wait. */
export function deployStages(goal: DeployGoal): StageName[] {
  return OPERATION_STAGES.deploy.filter((stage) => goal !== 'build' || stage !== 'deploy');
}

const stagesSchema = z.array(z.enum(STAGES));

export const plannedCommandSchema = z.object({
  /** argv[0] is the program; each element reaches it as one argument (placeholders `{{…}}` filled at run time) */
  argv: z.array(z.string()),
  /** added to the orchestrator's environment */
  env: z.record(z.string(), z.string()).optional(),
  /** killed (with everything it started) after this many ms */
  timeoutMs: z.number(),
});
export type PlannedCommand = z.infer<typeof plannedCommandSchema>;

const place = z.discriminatedUnion('kind', [z.object({ kind: z.literal('local') }), z.object({ kind: z.literal('ssh'), host: remoteHostSchema })]);

export const healthCheckPlanSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('command'),
    name: z.string(),
    /** run on the target as its deploy user, in the round's command (HealthPlan.round) */
    argv: z.array(z.string()).min(1),
    /** healthy when stdout (trimmed) is one of these, whatever the exit status; absent: when it exits 0 */
    stdoutOneOf: z.array(z.string()).optional(),
  }),
  z.object({ kind: z.literal('http'), name: z.string(), url: z.string(), status: z.number(), timeoutMs: z.number() }),
]);
export type HealthCheckPlan = z.infer<typeof healthCheckPlanSchema>;

export const healthPlanSchema = z.object({
  /** in the order a failure is told: the first failing check of a round is the reason */
  checks: z.array(healthCheckPlanSchema),
  /**
   * one round of the command checks, one after the other in one command on the target, bounded as a whole
   * (lib/remote/health-round.ts); absent without command checks. Each round runs every check; the HTTP checks
   * are fetched from here beside it, each with the same bound.
   */
  round: plannedCommandSchema.optional(),
  /** a round is tried 1 + retries times, intervalMs apart, until every check passes in one */
  retries: z.number(),
  intervalMs: z.number(),
  /** after they first pass, every check must keep passing this long (0: no settle window) */
  settleMs: z.number(),
});
export type HealthPlan = z.infer<typeof healthPlanSchema>;

/**
 * --reboot (goal boot): after the boot default is set, the host reboots and
 * must come back, within `waitMs`, having booted `expectBooted`; then the
 * health checks run.
 */
export const rebootPlanSchema = z.object({
  /** as root: leaves `marker` in /run and runs systemctl reboot (lib/remote/scripts.ts REBOOT); its ssh session may end with 255 */
  command: plannedCommandSchema,
  /** in /run, a fresh tmpfs on every boot: gone means the host booted again (the kernel's boot_id is the host machine's in a container) */
  marker: z.string(),
  /** asked every pollIntervalMs over a new connection (the run's reused one dies with the host): the marker, boot id, booted and running system, system state (BOOT_CHECK) */
  poll: plannedCommandSchema,
  pollIntervalMs: z.number(),
  /** how long the host may take to come back, from the reboot command's end (inventory timeouts.rebootSeconds) */
  waitMs: z.number(),
  /** what it must have booted: the link `bootedSystem` (NixOS's stage 2 makes it) resolves to this toplevel */
  bootedSystem: z.string(),
  expectBooted: z.string(),
});
export type RebootPlan = z.infer<typeof rebootPlanSchema>;

/** One target's steps, in the order they run; a step that is absent does not run for this goal and these options. */
export const hostPlanSchema = z.object({
  name: z.string(),
  system: z.string(),
  target: remoteHostSchema,
  /** prints the profile link, its store path and the running system (lib/remote/scripts.ts PROBE_GENERATION) */
  probe: plannedCommandSchema,
  /**
   * what the new toplevel changes against the system the probe read
   * (lib/nix/closure-diff.ts CLOSURE_DIFF, on the target as its deploy user,
   * fetching the new toplevel from its substituters): before activation
   */
  diff: plannedCommandSchema.optional(),
  /** deploy method direct, a target other than this machine: copies the toplevel's closure there (before the watchdog is armed: it changes nothing the host runs) */
  copy: plannedCommandSchema.optional(),
  /** arms the magic-rollback watchdog with the generation the probe read (and then sets the profile: `armSetsProfile`) */
  arm: plannedCommandSchema.optional(),
  /** the arm step then points the system profile at the new toplevel, in one round trip (exit 81: armed, the profile not set) */
  armSetsProfile: z.literal(true).optional(),
  /** deploy method direct, goals switch and boot, without a watchdog: points the system profile at the new toplevel (a new generation) */
  setProfile: plannedCommandSchema.optional(),
  /** the activation: nixos-rebuild (--store-path or --flake), the direct method's switch-to-configuration, or a rollback's switch to a generation */
  rebuild: plannedCommandSchema,
  /** --reboot: reboot into the new boot default and check it booted it */
  reboot: rebootPlanSchema.optional(),
  /** for goals that activate (switch, test), and after a reboot */
  health: healthPlanSchema.optional(),
  /**
   * with the watchdog, a target other than this machine: after the activation, beside the health checks, a new
   * SSH login (never the run's reused connection) that becomes root with `sudo -n`, as the next deploy will: the
   * confirmation waits for it, so a host the activation left unreachable is not confirmed
   */
  freshLogin: plannedCommandSchema.optional(),
  /** disarms the watchdog once the checks held and the new login worked: exit 3 means it came too late */
  confirm: plannedCommandSchema.optional(),
  /** back to the probed generation when activation or health checks fail */
  rollback: plannedCommandSchema.optional(),
  /** closes the run's reused connection to the target, once its deploy ended (or at the run's end) */
  closeConnection: plannedCommandSchema.optional(),
});
export type HostPlan = z.infer<typeof hostPlanSchema>;

/** A remote builder a system's build may use: asked in preflight; when it answers, its entry joins that build's --builders. */
export const builderPlanSchema = z.object({
  /** the inventory's name for it (the coordinator's name when the coordinator builds its own system for a run started elsewhere) */
  host: z.string(),
  /** it answers SSH as its builder user and has Nix */
  check: plannedCommandSchema,
  /** how Nix names this builder in its log: the URI its --builders entry starts with */
  uri: z.string(),
  /** its --builders entry, in Nix's machines format */
  spec: z.string(),
  /** once the seed build ended (or at the run's end), close the connection its login opened and the builds reused (`ssh -O exit`) */
  closeConnection: plannedCommandSchema.optional(),
});
export type BuilderPlan = z.infer<typeof builderPlanSchema>;

/**
 * One Nix system's seed build: every selected toplevel of that system in one
 * `nix build`, beside the other systems' builds. `on: builders`: on the
 * builders that answer in preflight, the preferred seed first (they fill
 * `{{builders:<system>}}`; `--max-jobs 0` keeps everything off this
 * machine); `on: here`: natively on this machine, the coordinator (x86_64
 * builds stay on hawk).
 */
export const systemBuildSchema = z.object({
  system: z.string(),
  hosts: z.array(z.string()),
  on: z.enum(['builders', 'here']),
  /** the preferred seed first, then the others in inventory order; empty when built here */
  builders: z.array(builderPlanSchema),
  /**
   * Started as soon as `hosts`' first host is evaluated (the first
   * evaluation), while the others' evaluation goes on: the derivations its
   * toplevel shares with the others (the kernel) start building then. On
   * builders: on the seed alone (`{{seed-builder:<system>}}`), once it
   * answered, not waiting for the other builders' checks.
   * Absent for a system of one host.
   */
  headStart: z.object({ hosts: z.array(z.string()), build: plannedCommandSchema }).optional(),
  /**
   * the system's other toplevels (all of them without a head start), once
   * they are evaluated: what they share with the head start's (the kernel)
   * is found built or building
   */
  build: plannedCommandSchema,
});
export type SystemBuild = z.infer<typeof systemBuildSchema>;

/** The fleet's deploy lock on the coordinator, held by deploys and rollbacks alike; `{{lock-holder}}` and `{{lock-holder-id}}` are this run's (lib/run/lock.ts). */
const lockPlanSchema = z.object({
  path: z.string(),
  acquire: plannedCommandSchema,
  release: plannedCommandSchema,
  remove: plannedCommandSchema,
  /** a lock older than this is stale whoever holds it */
  maxAgeMs: z.number(),
});

/** Every target logs in and becomes root as every root step will (`sudo -n -- true` for a non-root user). */
const targetChecksSchema = z.array(
  z.object({
    host: z.string(),
    command: plannedCommandSchema,
    escalates: z.boolean(),
    /** the target is this machine: checked here, without ssh */
    local: z.boolean().optional(),
  }),
);

/** The deploy stage: each host's steps (activation wrapped in the safety steps), and how they are paced. */
const deployStageSchema = z.object({
  /** ask before activating each host, showing its closure diff (--interactive) */
  interactive: z.boolean(),
  /** stop each host after its closure diff: nothing is activated (--dry-run --diff) */
  diffOnly: z.boolean(),
  concurrency: z.number(),
  /** the first wave's hosts when it is a canary wave: deployed alone first, their failure stops the rest (--canary, or the seeds with --rolling) */
  canaries: z.array(z.string()),
  rolling: z.boolean(),
  keepGoing: z.boolean(),
  rollback: z.boolean(),
  magicRollback: z.boolean(),
  confirmTimeoutSeconds: z.number(),
  hosts: z.record(z.string(), hostPlanSchema),
});

export const deployPlanSchema = z.object({
  operation: z.literal('deploy'),
  goal: z.enum(DEPLOY_GOALS),
  /** the stages the run executes, in order (lib/plan/types.ts deployStages): without `deploy` for goal build */
  stages: stagesSchema,
  flake: z.string(),
  hosts: z.array(z.string()),
  coordinator: z.object({ name: z.string(), place }),
  baselineMinutes: z.number(),
  /** absent for goal build: it changes no host, so it does not wait for (or block) a deploy */
  lock: lockPlanSchema.optional(),
  preflight: z.object({
    /** empty for goal build: a prebuild must work while a target is down */
    targets: targetChecksSchema,
    /** whether this machine's Nix trusts `user` (else its daemon ignores --builders): asked in order until one answer tells */
    nixTrust: z.object({
      user: z.string(),
      storeInfo: plannedCommandSchema,
      storePing: plannedCommandSchema,
      configShow: plannedCommandSchema,
      showConfig: plannedCommandSchema,
      groups: plannedCommandSchema,
    }),
    /** the nixos-rebuild probed here, and what cannot work with it; absent for goal build and the direct method (none runs) */
    rebuild: z.object({ tool: rebuildToolSchema, problems: z.array(z.string()) }).optional(),
    gcRootDir: z.string(),
    /** the seed build pins into gcRootDir on the coordinator: it must be writable there before building */
    gcRootDirWritable: plannedCommandSchema,
    /** the cache must sign with this key: checked on the newest paths pinned on the coordinator */
    cacheKey: z.object({ publicKey: z.string(), listRoots: plannedCommandSchema }),
    cacheUrl: z.string(),
    requestTimeoutMs: z.number(),
  }),
  /**
   * The evaluations, all started with the run, beside preflight (they touch
   * no host): the first holds each system's first host, so that its head
   * start begins after one evaluation; the second the others. Each host is
   * in exactly one: evaluated once per run.
   */
  evaluate: z.array(z.object({ hosts: z.array(z.string()), command: plannedCommandSchema })),
  /** one build per Nix system of the selected hosts, run at the same time */
  builds: z.array(systemBuildSchema),
  /** the deploy stage's order: each system's seed that is a target first, alone with them; the rest; this machine last */
  waves: z.array(z.array(z.string())),
  /** brings the toplevels to the coordinator's store when this machine is not the coordinator */
  copyToCoordinator: plannedCommandSchema.optional(),
  /** GC roots for the toplevels on the coordinator (mkdir, then one ln per toplevel) */
  pin: z.object({ commands: z.array(plannedCommandSchema), roots: z.array(z.object({ host: z.string(), storePath: z.string(), root: z.string() })) }),
  waitForCache: z.object({
    cacheUrl: z.string(),
    publicKey: z.string(),
    /** one narinfo per toplevel, polled at most every pollMaxMs until timeoutMs */
    narinfos: z.array(z.object({ host: z.string(), storePath: z.string(), url: z.string() })),
    pollMaxMs: z.number(),
    timeoutMs: z.number(),
    requestTimeoutMs: z.number(),
    allowUnsigned: z.boolean(),
  }),
  /** how the deploy stage puts each toplevel on its host, and why (lib/nix/deploy-method.ts); absent for goal build */
  deployMethod: deployMethodSchema.optional(),
  /** no hosts for goal build: the run stops after the cache wait (`stages` has no `deploy`) */
  deploy: deployStageSchema,
});
export type DeployPlan = z.infer<typeof deployPlanSchema>;

/** Which generation a rollback switches a host to, decided on the host by the resolve stage. */
export const rollbackTargetSchema = z.discriminatedUnion('kind', [
  /** the highest-numbered generation below the profile's (nixos-rebuild --rollback) */
  z.object({ kind: z.literal('previous') }),
  /** generation `number` of the system profile (--to) */
  z.object({ kind: z.literal('generation'), number: z.number().int().nonnegative() }),
  /** the newest generation whose toplevel is this store path: what run `run` found on the host (--run) */
  z.object({ kind: z.literal('toplevel'), toplevel: z.string(), run: z.string() }),
]);
export type RollbackTarget = z.infer<typeof rollbackTargetSchema>;

/**
 * A rollback: the deploy's own safety steps (lock, preflight of the targets,
 * watchdog, activation as root, health checks, confirmation, rollback of the
 * rollback, report) around a switch to a generation the host already has.
 * No evaluation, build or cache: the resolve stage reads each host's
 * generations and fills `{{toplevel:<host>}}` with the one to go back to.
 */
export const rollbackPlanSchema = z.object({
  operation: z.literal('rollback'),
  goal: z.enum(['switch', 'boot', 'test']),
  /** the stages the run executes, in order: OPERATION_STAGES.rollback */
  stages: stagesSchema,
  hosts: z.array(z.string()),
  coordinator: z.object({ name: z.string(), place }),
  lock: lockPlanSchema,
  preflight: z.object({ targets: targetChecksSchema }),
  resolve: z.object({
    hosts: z.record(
      z.string(),
      z.object({
        /** lists the host's system generations (lib/remote/generations.ts), as its deploy user */
        list: plannedCommandSchema,
        to: rollbackTargetSchema,
      }),
    ),
  }),
  /** the order the hosts go in: one wave, or waves of the batch size with --rolling */
  waves: z.array(z.array(z.string())),
  deploy: deployStageSchema,
});
export type RollbackPlan = z.infer<typeof rollbackPlanSchema>;

/** A plan a run executes (lib/run/run.ts). */
export type RunnablePlan = DeployPlan | RollbackPlan;

/** What a plan's activation step is called in --dry-run, a host's progress and its failure. */
export function activationName(plan: RunnablePlan): string {
  if (plan.operation === 'rollback') return 'switch to the chosen generation';
  return plan.deployMethod?.kind === 'direct' ? 'switch-to-configuration' : 'nixos-rebuild';
}

/** What `--dry-run --json` prints. */
export const dryRunOutputSchema = z.object({
  dryRun: z.literal(true),
  plan: z.discriminatedUnion('operation', [deployPlanSchema, rollbackPlanSchema]),
  /** with --diff: each host's closure diff, made after building and fetching (nothing activated) */
  diffs: z.record(z.string(), hostClosureDiffSchema).optional(),
});
