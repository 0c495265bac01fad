/**
 * --reboot: one host's reboot into its new boot default and the bounded wait
 * for it to come back (lib/plan/types.ts RebootPlan). What it booted is
 * judged by the caller (lib/stages/deploy-host.ts), which knows the toplevel.
 */
import { sleep } from '../backoff.ts';
import type { CommandResult } from '../exec/types.ts';
import { outputTail, succeeded } from '../exec/types.ts';
import type { PlannedCommand, RebootPlan } from '../plan/types.ts';
import { type BootCheck, parseBootCheck } from '../remote/scripts.ts';

/** systemctl is-system-running while the boot goes on: not back yet. */
const BOOTING_STATES = ['initializing', 'starting'];

export type RebootOutcome =
  /** the reboot could not be asked for (no marker was left): the host still runs as it did */
  | { readonly kind: 'not-asked'; readonly result: CommandResult }
  | { readonly kind: 'aborted' }
  /** no sign of a new boot within the plan's bound; `last` says what the last poll found */
  | { readonly kind: 'not-back'; readonly waitedMs: number; readonly last: string; readonly before: BootCheck }
  /** the marker is gone: it booted again (`after` is what it says now, perhaps still booting when the bound ran out) */
  | { readonly kind: 'back'; readonly waitedMs: number; readonly before: BootCheck; readonly after: BootCheck };

export interface RebootDeps {
  readonly host: string;
  /** runs a planned command (placeholders filled) */
  readonly run: (command: PlannedCommand) => Promise<CommandResult>;
  readonly signal: AbortSignal;
  readonly say: (text: string) => void;
  /** closes the run's reused connection, which the reboot leaves dead or dying */
  readonly closeConnection?: PlannedCommand | undefined;
}

/**
 * Reboots the host as planned and waits, asking over a new connection every
 * `pollIntervalMs`, until its /run marker is gone and it has booted (a
 * booted system linked, its system no longer starting), for at most
 * `waitMs` from the end of the reboot command. The reboot command's ssh
 * session ending with 255 once it printed the marker is the expected end of
 * a rebooting host's sshd, not a failure. Never throws for the host's
 * answers: the outcome says what is known.
 */
export async function rebootAndWait(plan: RebootPlan, deps: RebootDeps): Promise<RebootOutcome> {
  const { host, run, signal, say } = deps;
  say('rebooting');
  const asked = await run(plan.command);
  if (asked.aborted) return { kind: 'aborted' };
  const before = parseBootCheck(asked.stdout);
  if (before.marker === undefined) return { kind: 'not-asked', result: asked };
  // A master that outlived the host's sshd would hand later commands a dead connection.
  if (deps.closeConnection) await run(deps.closeConnection);

  const started = Date.now();
  let last = 'no answer yet';
  let booted: BootCheck | undefined;
  for (;;) {
    say(`waiting for ${host} to come back (${Math.round((Date.now() - started) / 1000)} s)`);
    const polled = await run(plan.poll);
    if (polled.aborted || signal.aborted) return { kind: 'aborted' };
    if (succeeded(polled)) {
      const now = parseBootCheck(polled.stdout);
      if (now.rebooted) {
        booted = now;
        if (now.bootedSystem && !BOOTING_STATES.includes(now.state ?? '')) return { kind: 'back', waitedMs: Date.now() - started, before, after: now };
        say(`${host} is booting (system ${now.state ?? 'unknown'}${now.bootedSystem ? '' : `, no ${plan.bootedSystem} yet`})`);
      } else {
        last = now.rebooted === false ? `the same boot: ${plan.marker} is still there` : `an answer without the boot check's fields: ${outputTail(polled, 1)[0] ?? 'nothing'}`;
      }
    } else {
      last = `no answer over SSH: ${outputTail({ stderr: polled.stderr, stdout: '' }, 1)[0] ?? (polled.timedOut ? 'timed out' : `exit ${polled.exitCode}`)}`;
    }
    const left = started + plan.waitMs - Date.now();
    if (left <= 0) {
      const waitedMs = Date.now() - started;
      return booted ? { kind: 'back', waitedMs, before, after: booted } : { kind: 'not-back', waitedMs, last, before };
    }
    await sleep(Math.min(plan.pollIntervalMs, left), signal);
    if (signal.aborted) return { kind: 'aborted' };
  }
}
