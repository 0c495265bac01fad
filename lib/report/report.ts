/**
 * The run report, the model every other module of lib/report reads: its one
 * schema (the types below are inferred from it, load.ts validates stored
 * reports with it), the verdict against the baseline, built from the
 * recorder and stored as JSON. Renderings live in render/; nothing here
 * imports them.
 */
import { z } from 'zod';
import type { CommandLogEntry } from '../exec/types.ts';
import { hostClosureDiffSchema } from '../nix/closure-diff.ts';
import type { BuildRecord } from '../nix/build-log.ts';
import { OPERATION_STAGES, OPERATIONS, type StageName, STAGES } from '../plan/types.ts';
import { writeJsonAtomically } from '../util/atomic-json.ts';
import { HOST_EFFECTS, HOST_GENERATIONS, HOST_STATES, OUTCOMES, type RunRecorder, spanDuration } from './timing.ts';

export const runOutcomeSchema = z.enum(['success', 'failed', 'interrupted']);
export type RunOutcome = z.infer<typeof runOutcomeSchema>;

export const baselineVerdictSchema = z.object({
  totalMs: z.number(),
  baselineMinutes: z.number(),
  /** baseline / total: above 1 means faster than the baseline (infinite for a 0 ms run) */
  speedup: z.number(),
  /** baseline - total, in minutes; negative when slower */
  savedMinutes: z.number(),
});
export type BaselineVerdict = Readonly<z.infer<typeof baselineVerdictSchema>>;

export const pinnedRootSchema = z.object({
  storePath: z.string(),
  root: z.string(),
  /** "local" or user@address of the cache host */
  on: z.string(),
});
export type PinnedRoot = Readonly<z.infer<typeof pinnedRootSchema>>;

/** A stage's or host's place on the run's time axis; both absent when it never ran (or never ended). */
const span = {
  /** offset from the run's start */
  startMs: z.number().optional(),
  durationMs: z.number().optional(),
};

export const stageEntrySchema = z.object({ name: z.enum(STAGES), outcome: z.enum([...OUTCOMES, 'not-started']), ...span });
export type StageEntry = Readonly<z.infer<typeof stageEntrySchema>>;

export const hostEntrySchema = z.object({
  name: z.string(),
  state: z.enum(HOST_STATES),
  /** absent in reports written before generations were recorded */
  generation: z.enum(HOST_GENERATIONS).optional(),
  /**
   * For a deployed host, what its goal did there (timing.ts HOST_EFFECTS);
   * absent in reports written before effects were recorded (read from the run's goal then).
   */
  effect: z.enum(HOST_EFFECTS).optional(),
  /** true when the host had no system profile before the run (so no previous generation) */
  firstDeploy: z.boolean().optional(),
  /** what the host ran before the run (its running system) and its profile's generation then: what `rollback --run` goes back to */
  previousToplevel: z.string().optional(),
  previousGeneration: z.number().int().nonnegative().optional(),
  note: z.string().optional(),
  ...span,
  toplevel: z.string().optional(),
  /**
   * What the new toplevel changes against the system the host ran, found
   * before activation (lib/nix/closure-diff.ts): packages added, removed and
   * changed, and the closure sizes; `kind: 'first-deploy'` when the host ran
   * no system to compare with (as `firstDeploy`: it had none). Absent when
   * no diff was asked for or it could not be made.
   */
  diff: hostClosureDiffSchema.optional(),
});
export type HostEntry = Readonly<z.infer<typeof hostEntrySchema>>;

/**
 * One derivation Nix built (lib/nix/build-log.ts BuildRecord): where (`machine`, the builder URI Nix
 * named; absent: the machine that ran nix, as JSON drops an undefined one) and when, on the run's time
 * axis (absent in older reports; `durationMs` also when Nix's log never said the build stopped).
 */
const buildRecordSchema = z.object({ drvPath: z.string(), machine: z.string().optional(), ...span });
export type BuildEntry = Readonly<z.infer<typeof buildRecordSchema>>;

/** One Nix system's seed build (timing.ts BuildSpan); `startMs`/`durationMs` absent when it never ended. */
export const systemBuildEntrySchema = z.object({
  system: z.string(),
  on: z.enum(['builders', 'here']),
  seed: z.string(),
  hosts: z.array(z.string()).readonly(),
  outcome: z.enum([...OUTCOMES, 'not-started']),
  /** derivations Nix built: 0 when every output was there already */
  derivations: z.number().int().nonnegative().optional(),
  ...span,
});
export type SystemBuildEntry = Readonly<z.infer<typeof systemBuildEntrySchema>>;

const commandLogEntrySchema: z.ZodType<CommandLogEntry> = z.object({
  argv: z.array(z.string()).readonly(),
  exitCode: z.number().nullable(),
  startedAt: z.number(),
  durationMs: z.number(),
});

/** The run report as stored in `<reportDir>/<id>.json`; fields added after the first reports are optional. */
export const runReportSchema = z.object({
  id: z.string(),
  outcome: runOutcomeSchema,
  /** absent in reports written before rollbacks: a deploy */
  operation: z.enum(OPERATIONS).optional(),
  goal: z.string(),
  /** a deploy's seed builder, of the first system when there are several (a rollback builds nothing) */
  seed: z.string().optional(),
  /** a deploy's seed build of each Nix system, side by side; absent in reports written before several systems per run */
  systemBuilds: z.array(systemBuildEntrySchema).readonly().optional(),
  /** why another builder than the preferred seed built */
  seedFailover: z.string().optional(),
  flake: z.string().optional(),
  startedAt: z.string(),
  totalMs: z.number(),
  /** a deploy against the one-by-one baseline; absent for a rollback */
  verdict: baselineVerdictSchema.optional(),
  stages: z.array(stageEntrySchema).readonly(),
  hosts: z.array(hostEntrySchema).readonly(),
  builds: z.array(buildRecordSchema).readonly(),
  commands: z.array(commandLogEntrySchema).readonly(),
  error: z.string().optional(),
  /** GC roots this run made on the cache host for the built toplevels */
  pinnedRoots: z.array(pinnedRootSchema).readonly().optional(),
  /** what the run accepted that it normally refuses (--allow-unsigned) */
  warnings: z.array(z.string()).readonly().optional(),
});
export type RunReport = Readonly<z.infer<typeof runReportSchema>>;

/** `totalMs` against the one-by-one deploy of `baselineMinutes`. */
export function compareWithBaseline(totalMs: number, baselineMinutes: number): BaselineVerdict {
  const totalMinutes = totalMs / 60_000;
  return {
    totalMs,
    baselineMinutes,
    speedup: totalMs > 0 ? baselineMinutes / totalMinutes : Number.POSITIVE_INFINITY,
    savedMinutes: baselineMinutes - totalMinutes,
  };
}

/** What a run hands over for its report: the report's own fields, the recorder for the times, and what the verdict and hosts are made from. */
export interface ReportInput
  extends Pick<RunReport, 'outcome' | 'operation' | 'goal' | 'seed' | 'seedFailover' | 'flake' | 'commands' | 'error' | 'pinnedRoots' | 'warnings'> {
  readonly recorder: RunRecorder;
  /** the stages the plan ran (its `stages`); default: all of the operation's */
  readonly stages?: readonly StageName[] | undefined;
  /** what Nix said it built, where and when (epoch ms) */
  readonly builds: readonly BuildRecord[];
  /** the selected hosts' names, in the report's order */
  readonly hosts: readonly string[];
  /** a deploy's one-by-one baseline; absent: no verdict (a rollback) */
  readonly baselineMinutes?: number | undefined;
  /** each host's built toplevel, by host name */
  readonly toplevels?: Readonly<Record<string, string>> | undefined;
}

/**
 * The report of a run that has ended, its times read from the recorder (every
 * stage but `report` itself). A build's hosts (goal `build`: no deploy stage)
 * are `built` when the cache wait served every toplevel signed, else
 * `not-started`; either way untouched, on the generation they ran.
 */
export function buildReport(input: ReportInput): RunReport {
  const { recorder } = input;
  const totalMs = recorder.elapsed();
  const startedAt = new Date(recorder.startedAt).toISOString();
  const offset = (span: { startedAt: number } | undefined) => (span ? span.startedAt - recorder.startedAt : undefined);
  const built = input.goal === 'build' && recorder.stages.get('wait-for-cache')?.outcome === 'success';
  return {
    id: startedAt.replace(/[:.]/g, '-'),
    outcome: input.outcome,
    operation: input.operation ?? 'deploy',
    goal: input.goal,
    seed: input.seed,
    seedFailover: input.seedFailover,
    flake: input.flake,
    startedAt,
    totalMs,
    ...(input.baselineMinutes === undefined ? {} : { verdict: compareWithBaseline(totalMs, input.baselineMinutes) }),
    stages: (input.stages ?? OPERATION_STAGES[input.operation ?? 'deploy']).filter((name) => name !== 'report').map((name) => {
      const span = recorder.stages.get(name);
      return { name, outcome: span?.outcome ?? 'not-started', startMs: offset(span), durationMs: spanDuration(span) };
    }),
    hosts: input.hosts.map((name) => {
      const span = recorder.hosts.get(name);
      return {
        name,
        state: span?.state ?? (built ? 'built' : 'not-started'),
        // A host never started is still on the generation it had.
        generation: span?.generation ?? 'previous',
        effect: span?.effect,
        firstDeploy: span?.firstDeploy,
        previousToplevel: span?.previousToplevel,
        previousGeneration: span?.previousGeneration,
        diff: span?.diff,
        note: span?.note,
        startMs: offset(span),
        durationMs: spanDuration(span),
        toplevel: input.toplevels?.[name],
      };
    }),
    ...(recorder.builds.size
      ? {
          // By system name: the order the builds started in (a head start first) says nothing.
          systemBuilds: [...recorder.builds].sort(([a], [b]) => a.localeCompare(b)).map(([system, b]) => ({
            system,
            on: b.on,
            seed: b.seed,
            hosts: b.hosts,
            outcome: b.outcome ?? 'not-started',
            derivations: b.derivations,
            startMs: offset(b),
            durationMs: spanDuration(b),
          })),
        }
      : {}),
    builds: input.builds.map(({ drvPath, machine, startedAt, endedAt }) => ({
      drvPath,
      ...(machine === undefined ? {} : { machine }),
      ...(startedAt === undefined ? {} : { startMs: startedAt - recorder.startedAt }),
      ...(startedAt === undefined || endedAt === undefined ? {} : { durationMs: endedAt - startedAt }),
    })),
    commands: input.commands,
    error: input.error,
    pinnedRoots: input.pinnedRoots ?? [],
    warnings: input.warnings ?? [],
  };
}

/** Writes `<dir>/<id>.json` through a temporary name, so a crash never leaves half a report; returns its path. */
export function writeReport(dir: string, report: RunReport): Promise<string> {
  return writeJsonAtomically(dir, report.id, report);
}
