/**
 * `exec`'s plan as plain data: one argv, run on every selected host over
 * ssh as its deploy user (or as root behind `sudo -n`), bounded on the host
 * by coreutils' `timeout` and here by the command's own bound. Assembled once
 * by {@link planExec} before anything runs; `--dry-run` prints it and
 * lib/ops/exec.ts runs it as it is.
 */
import { z } from 'zod';
import { UsageError } from '../errors.ts';
import type { HostName, Inventory } from '../inventory/schema.ts';
import { type Here, reachTarget, shortCommandTimeoutMs } from '../remote/fleet.ts';
import { remoteArgv, remoteHostSchema } from '../remote/host.ts';
import { DEFAULT_CONCURRENCY } from './concurrency.ts';
import { plannedCommandSchema } from './types.ts';

/** The bound on the command on each host, in seconds, unless `--timeout` says otherwise: a user command may be long. */
export const EXEC_DEFAULT_TIMEOUT_SECONDS = 600;
/** After `timeout` sends SIGTERM to a command past its bound, it sends SIGKILL this many seconds later. */
export const EXEC_KILL_AFTER_SECONDS = 10;
/** coreutils `timeout`'s exit status when the command ran past its bound (SIGTERM ended it). */
export const TIMEOUT_EXIT_STATUS = 124;

export const execHostPlanSchema = z.object({
  name: z.string(),
  target: remoteHostSchema,
  /** the ssh command line: the remote command is one string of quoted words, so each argv word arrives as one argument */
  command: plannedCommandSchema,
});
export type ExecHostPlan = z.infer<typeof execHostPlanSchema>;

export const execPlanSchema = z.object({
  /** what the operator asked to run, word for word */
  argv: z.array(z.string()).min(1),
  /** run it as root (`sudo -n --` for a non-root deploy user) */
  sudo: z.boolean(),
  /** hosts that run it at once */
  concurrency: z.number().int().positive(),
  /** the bound on each host, in seconds (coreutils `timeout` there) */
  timeoutSeconds: z.number().int().positive(),
  /** in inventory order */
  hosts: z.array(execHostPlanSchema),
});
export type ExecPlan = z.infer<typeof execPlanSchema>;

export interface ExecOptions {
  readonly argv: readonly string[];
  readonly sudo: boolean;
  readonly concurrency?: number | undefined;
  readonly timeoutSeconds?: number | undefined;
  /** this machine: run there without ssh */
  readonly here?: Here | undefined;
}

/**
 * The remote argv for one host: `timeout --kill-after=10 <s> <argv…>`, as
 * root when `sudo` (then `sudo -n -- timeout …`, so `timeout` may signal a
 * root command). The bound is on the host because killing the local ssh
 * does not stop what it started there: sshd gives a command without a
 * terminal no signal when the connection drops. `timeout` runs argv[0]
 * through execvp: PATH lookup, no shell, so shell builtins are not commands
 * here (`sh -c '…'` runs a shell line, as the operator spells it).
 */
export function boundedArgv(argv: readonly string[], timeoutSeconds: number): string[] {
  return ['timeout', `--kill-after=${EXEC_KILL_AFTER_SECONDS}`, String(timeoutSeconds), ...argv];
}

/**
 * exec's plan for `hosts` (already selected, in inventory order). Each word
 * of `argv` reaches the remote program as one argument, whatever it holds
 * (spaces, quotes, `$(…)`, `;`, newlines): lib/remote/host.ts remoteArgv
 * quotes every word for the target's POSIX login shell, which ssh hands the
 * remote command as one string. The local bound (timeoutMs) leaves the
 * host's own `timeout` room to fire first and its SIGKILL grace, plus
 * connecting (shortCommandTimeoutMs). Throws UsageError for an empty argv or
 * an empty first word.
 */
export function planExec(inventory: Inventory, hosts: readonly HostName[], options: ExecOptions): ExecPlan {
  if (options.argv.length === 0 || options.argv[0] === '') throw new UsageError('name the command to run after --, e.g. -- systemctl status k3s');
  const timeoutSeconds = options.timeoutSeconds ?? EXEC_DEFAULT_TIMEOUT_SECONDS;
  const timeoutMs = (timeoutSeconds + EXEC_KILL_AFTER_SECONDS) * 1000 + shortCommandTimeoutMs(inventory);
  return execPlanSchema.parse({
    argv: [...options.argv],
    sudo: options.sudo,
    concurrency: options.concurrency ?? DEFAULT_CONCURRENCY,
    timeoutSeconds,
    hosts: hosts.map((name) => {
      const target = reachTarget(inventory, name, options.here);
      return { name, target, command: { argv: remoteArgv(target, boundedArgv(options.argv, timeoutSeconds), { asRoot: options.sudo }), timeoutMs } };
    }),
  });
}
