/**
 * One host's deploy, so that it always ends on its previous or its new
 * generation: remember what it runs, arm the magic-rollback watchdog,
 * nixos-rebuild, (--reboot: reboot into the new boot default, wait for it,
 * check what it booted), health checks and, beside them, a login over a new
 * connection, then confirm.
 * On a failure it is rolled back; where even that cannot reach it, the armed
 * watchdog reverts it by itself.
 */
import { InterruptedError, StageError } from '../errors.ts';
import { describeFailure } from '../exec/describe.ts';
import { type CommandResult, type Executor, outputTail, succeeded } from '../exec/types.ts';
import { isOutputNoise, tailWithoutNoise } from '../nix/build-log.ts';
import { type HostClosureDiff, parseClosureDiffOutput, summarizeClosureDiff } from '../nix/closure-diff.ts';
import type { Goal } from '../nix/commands.ts';
import { fillCommand, fillText, type PlaceholderValues, previousGenerationValues, toplevelOf } from '../plan/placeholders.ts';
import type { HostPlan, PlannedCommand } from '../plan/types.ts';
import { linkNumber } from '../remote/generations.ts';
import { type Generation, NOT_ARMED, parseGeneration, parseRollbackReport, PROFILE_NOT_SET } from '../remote/scripts.ts';
import { goalEffect, type HostEffect, type HostEnd, type RunRecorder } from '../report/timing.ts';
import { healthRoundFor, holdHealthy, runHealthChecks } from './health.ts';
import { rebootAndWait } from './reboot.ts';
import { sleep } from '../backoff.ts';

const CONFIRM_TOO_LATE = 3;
/** sudo's exit status when it refuses to run a command (`sudo -n` wanting a password): nothing ran. */
const SUDO_REFUSED = 1;

/** What one host's deploy runs: its plan, the run's choices that shape it, and what the run knows for the placeholders. */
export interface HostDeployment {
  readonly plan: HostPlan;
  readonly goal: Goal;
  readonly confirmTimeoutSeconds: number;
  /** the run id, the ssh control directory, the toplevels */
  readonly values: PlaceholderValues;
  /** what the activation step is called in what the host's row says and its failure: `nixos-rebuild`, `switch to the chosen generation` */
  readonly activation?: string | undefined;
  /** stop after the closure diff (--dry-run --diff) */
  readonly diffOnly?: boolean | undefined;
}

/** What it runs with. */
export interface HostDeps {
  readonly executor: Executor;
  readonly signal: AbortSignal;
  readonly recorder: RunRecorder;
  /** --interactive: asked before activating a host, with its closure diff (undefined when it could not be made); false leaves the host untouched */
  readonly confirmActivation?: ((host: string, diff: HostClosureDiff | undefined, why: string | undefined) => Promise<boolean>) | undefined;
}

/**
 * Runs one host's steps, as planned. Records the host's end in the recorder,
 * and throws StageError (the host failed: its message names the command,
 * its exit status and output tail) or InterruptedError.
 */
export async function deployHost(deployment: HostDeployment, deps: HostDeps, say: (text: string) => void): Promise<void> {
  const { plan: steps, goal } = deployment;
  const host = steps.name;
  const { executor, signal, recorder } = deps;
  let generationValues: PlaceholderValues = {};
  // Known once the probe read the host: it had no system profile, so no previous generation.
  let firstDeploy = false;
  // What it ran before (for the report, and `rollback --run`, which goes back to it); what the new system changes
  // goes to the recorder when the diff comes (RunRecorder.noteHostDiff), before or after the host's end.
  let before: Pick<HostEnd, 'previousToplevel' | 'previousGeneration'> = {};
  const fill = (command: PlannedCommand) => fillCommand(command, { ...deployment.values, ...generationValues });
  const run = (command: PlannedCommand) => executor.run(fill(command), { signal });
  const end = (result: HostEnd) => recorder.endHost(host, { ...result, ...before, ...(firstDeploy ? { firstDeploy } : {}) });
  const newToplevel = toplevelOf(deployment.values, host);
  const fail = (result: HostEnd, message: string): never => {
    end(result);
    throw new StageError(result.note ? `${message}\n  → ${host}: ${result.note}` : message);
  };

  recorder.startHost(host);
  say('reading the current generation');
  const probe = await run(steps.probe);
  if (probe.aborted) return interrupted(end, host, 'previous');
  if (!succeeded(probe)) fail({ state: 'failed', generation: 'previous', note: 'not touched' }, describeFailure(`${host}: cannot read its generation`, fill(steps.probe), probe));
  const previous = parseGeneration(probe.stdout);
  generationValues = previousGenerationValues(previous);
  firstDeploy = previous.profileLink === '';
  const previousGeneration = linkNumber(previous.profileLink);
  before = {
    ...(previous.currentSystem ? { previousToplevel: previous.currentSystem } : {}),
    ...(previousGeneration === undefined ? {} : { previousGeneration }),
  };

  const noteDiff = (compared: { diff?: HostClosureDiff; why?: string }) => {
    if (compared.diff) recorder.noteHostDiff(host, compared.diff);
    say(compared.diff ? `closure: ${summarizeClosureDiff(compared.diff)}` : `no closure diff: ${compared.why}`);
  };
  // The closure diff goes first only when someone looks at it before the activation (--interactive, --dry-run
  // --diff). Otherwise it is for the report (it only reads the store), and the host ends once it has: it runs
  // from the activation's end beside the health checks, whose settle window only waits, or, without one, beside
  // the steps from the copy on (not beside the activation where there is a window: both work the same CPUs).
  let diffing: Promise<void> = Promise.resolve();
  // A host that failed does not wait for its diff: stopped, the report has it if it came first.
  const stopDiff = new AbortController();
  // The new login beside the health checks, which the confirmation waits for; stopped when the host fails first.
  let loggingIn: Promise<CommandResult> | undefined;
  const stopLogin = new AbortController();
  let deployed = false;
  const diffAsked = deployment.diffOnly || deps.confirmActivation !== undefined;
  if (steps.diff && diffAsked) {
    say('comparing closures (nix store diff-closures)');
    const compared = await diffClosures(run, steps.diff);
    if (compared === 'aborted') return interrupted(end, host, 'previous');
    noteDiff(compared);
    if (deployment.diffOnly) {
      end({ state: 'not-started', generation: 'previous', note: compared.diff ? 'dry run: compared, not activated' : `dry run: no closure diff (${compared.why})` });
      return;
    }
    if (deps.confirmActivation && !(await deps.confirmActivation(host, compared.diff, compared.why))) {
      end({ state: 'not-started', generation: 'previous', note: 'not activated: declined at the --interactive question' });
      return;
    }
  }
  const diffBeside = diffAsked ? undefined : steps.diff;
  const diffAfterActivation = (steps.health?.settleMs ?? 0) > 0;
  const startDiff = (diff: PlannedCommand) => {
    say('comparing closures (nix store diff-closures)');
    const diffSignal = AbortSignal.any([signal, stopDiff.signal]);
    const runDiff = (command: PlannedCommand) => executor.run(fill(command), { signal: diffSignal });
    // Recorded, not said: the row shows what the host is doing (the activation, the checks), and its final line the diff.
    diffing = diffClosures(runDiff, diff).then((compared) => {
      if (compared !== 'aborted' && compared.diff) recorder.noteHostDiff(host, compared.diff);
    }, () => undefined);
  };
  // After the copy, which fetches the closure the diff reads (both at once fetch it twice over, slower).
  if (diffBeside && !diffAfterActivation && !steps.copy) startDiff(diffBeside);

  try {
    // The direct method's copy changes nothing the host runs: before the watchdog, a failure leaves it untouched.
    if (steps.copy) {
      say('copying the closure (the target substitutes what it can)');
      const copied = await run(steps.copy);
      if (copied.aborted) return interrupted(end, host, 'previous');
      if (!succeeded(copied)) fail({ state: 'failed', generation: 'previous', note: 'not touched' }, describeFailure(`${host}: cannot copy its closure`, fill(steps.copy), copied, tailWithoutNoise(copied)));
      if (diffBeside && !diffAfterActivation) startDiff(diffBeside);
    }

    // The watchdog first, then the profile: a run stopped or failing before the watchdog leaves the host
    // untouched; after it, a profile set with no activation following is put back by the watchdog.
    let armed = false;
    const watchdogNote = watchdogReverts(host, deployment.confirmTimeoutSeconds, previous);
    if (steps.arm) {
      if (steps.armSetsProfile) say('arming the magic rollback and setting the system profile');
      const arm = await run(steps.arm);
      // With the profile in the same script, only a refusal before it (sudo's 1, the script's NOT_ARMED) says
      // nothing changed; a stop, a timeout or a dropped connection may come after the profile was set.
      const maybeSet = steps.armSetsProfile === true;
      if (arm.aborted) return interrupted(end, host, maybeSet ? 'unknown' : 'previous', maybeSet ? 'interrupted while the watchdog was armed and the profile set: the watchdog puts the profile back if no activation follows' : undefined);
      const refused = arm.exitCode === NOT_ARMED || arm.exitCode === SUDO_REFUSED;
      if (!succeeded(arm) && maybeSet && !refused) {
        const [why, what] =
          arm.exitCode === PROFILE_NOT_SET
            ? ['setting the system profile failed', 'cannot set its system profile']
            : ['the arm step did not finish (the watchdog may be armed and the profile set)', 'cannot arm the magic rollback and set its system profile'];
        return fail(await rollBack(true, why), describeFailure(`${host}: ${what}`, fill(steps.arm), arm));
      }
      if (!succeeded(arm)) fail({ state: 'failed', generation: 'previous', note: 'not touched' }, describeFailure(`${host}: cannot arm the magic rollback`, fill(steps.arm), arm));
      armed = true;
    }

    if (steps.setProfile) {
      say('setting the system profile');
      const set = await run(steps.setProfile);
      if (set.aborted) return interrupted(end, host, armed ? 'previous' : 'unknown', armed ? watchdogNote : undefined);
      if (!succeeded(set)) return fail(await rollBack(armed, 'setting the system profile failed'), describeFailure(`${host}: cannot set its system profile`, fill(steps.setProfile), set));
    }

    const activation = deployment.activation ?? 'nixos-rebuild';
    say(activation === 'nixos-rebuild' ? `nixos-rebuild ${goal}` : `${activation} (${goal})`);
    const command = fill(steps.rebuild);
    const shownLive = (line: string) => {
      if (!isOutputNoise(line)) say(line);
    };
    const rebuilt = await executor.run(command, { signal, onLine: shownLive });
    if (rebuilt.aborted) return interrupted(end, host, armed ? 'previous' : 'unknown', armed ? watchdogNote : undefined);
    if (!succeeded(rebuilt)) {
      const why = describeFailure(`${host} failed`, command, rebuilt, tailWithoutNoise(rebuilt));
      return fail(await rollBack(armed, `${activation} failed`), why);
    }

    // --reboot: the boot default is set; the host must come back having booted it.
    let rebootNote: string | undefined;
    if (steps.reboot) {
      // The reboot closes the connection the diff runs over.
      await diffing;
      const outcome = await rebootAndWait(steps.reboot, { host, run, signal, say, closeConnection: steps.closeConnection });
      if (outcome.kind === 'aborted') return interrupted(end, host, 'unknown', 'interrupted while it rebooted');
      if (outcome.kind === 'not-asked') return fail(await rollBack(false, 'could not ask it to reboot'), describeFailure(`${host}: cannot reboot it`, fill(steps.reboot.command), outcome.result));
      const waited = `${Math.round(outcome.waitedMs / 1000)} s`;
      const expected = fillText(steps.reboot.expectBooted, { ...deployment.values, ...generationValues });
      if (outcome.kind === 'not-back') {
        const note = `did not come back within ${waited} of its reboot (last: ${outcome.last}); nothing more could be done: it cannot be reached (its boot default is ${expected})`;
        return fail({ state: 'failed', generation: 'unknown', note }, `${host}: did not come back within ${waited} after its reboot into ${expected}`);
      }
      const booted = outcome.after.bootedSystem;
      if (booted !== expected) {
        const what = `it booted ${booted ?? `nothing (no ${steps.reboot.bootedSystem})`} instead of ${expected} (back after ${waited})`;
        const ended = await rollBack(false, what);
        // The rollback with goal boot points the boot default back at what runs.
        return fail(ended.state === 'rolled-back' ? { ...ended, note: `${ended.note}; its boot default is what it runs again` } : ended, `${host}: did not boot the new generation`);
      }
      const bootIds = outcome.before.bootId && outcome.after.bootId ? (outcome.before.bootId === outcome.after.bootId ? ', boot id unchanged (a container sharing the machine\'s)' : ', new boot id') : '';
      rebootNote = `rebooted into ${booted} in ${waited}${bootIds}`;
      say(`booted ${booted.slice(booted.lastIndexOf('/') + 1)} (back after ${waited})`);
    }

    if (diffBeside && diffAfterActivation) startDiff(diffBeside);
    let loggedIn = false;
    if (armed && steps.freshLogin) {
      loggingIn = logInAnew(steps.freshLogin, steps.health);
      const settled = () => (loggedIn = true);
      loggingIn.then(settled, settled);
    }
    if (steps.health) {
      const round = healthRoundFor(steps.health, executor, deployment.values);
      const names = steps.health.checks.map((check) => check.name);
      const health = await runHealthChecks(round, names, { retries: steps.health.retries, intervalMs: steps.health.intervalMs, signal, onProgress: say });
      if (signal.aborted) return interrupted(end, host, armed ? 'previous' : 'unknown', armed ? watchdogNote : undefined);
      if (health.failed) {
        const why = `${host}: health check failed after ${health.failed.attempts} attempt(s): ${health.failed.check}: ${health.failed.reason}`;
        return fail(await rollBack(armed, 'health check failed'), why);
      }
      // A unit that starts and dies seconds later passes one round of checks: they must hold.
      const settleSeconds = steps.health.settleMs / 1000;
      if (settleSeconds > 0) {
        const held = await holdHealthy(round, { durationMs: steps.health.settleMs, intervalMs: steps.health.intervalMs, signal, onProgress: say });
        if (signal.aborted) return interrupted(end, host, armed ? 'previous' : 'unknown', armed ? watchdogNote : undefined);
        if (held.failed) {
          const why = `${host}: health check failed ${held.failed.afterSeconds} s after activation, within the ${settleSeconds} s settle window: ${held.failed.check}: ${held.failed.reason}`;
          return fail(await rollBack(armed, 'health check failed in the settle window'), why);
        }
      }
    }

    if (armed && steps.confirm) {
      if (loggingIn && steps.freshLogin) {
        if (!loggedIn) say('waiting for the login over a new SSH connection');
        const login = await loggingIn;
        if (signal.aborted) return interrupted(end, host, 'previous', watchdogNote);
        if (!succeeded(login)) {
          const why = describeFailure(`${host}: could not log in over a new SSH connection after the activation, so it is not confirmed`, fill(steps.freshLogin), login);
          fail({ state: 'failed', generation: 'unknown', note: `not confirmed: a new SSH login failed (${tail(login)}); ${watchdogNote}` }, why);
        }
      }
      say(steps.target.local ? 'confirming here' : loggingIn ? 'confirming (a new SSH login worked)' : 'confirming');
      const confirm = await run(steps.confirm);
      if (confirm.exitCode === CONFIRM_TOO_LATE) {
        // The canary was gone: read what the host runs, rather than assume the watchdog's rollback worked.
        const now = parseRollbackReport(confirm.stdout);
        const generation = generationAfter(now, previous, newToplevel);
        const by = now.watchdogAt !== undefined ? `the watchdog rolled it back at ${new Date(now.watchdogAt * 1000).toISOString()}` : 'the watchdog had removed its canary without rolling back (it gave up waiting, or its rollback failed)';
        fail(
          { state: now.watchdogAt !== undefined && generation === 'previous' ? 'rolled-back' : 'failed', generation, note: `confirmation came too late: ${by}` },
          `${host}: not confirmed in time`,
        );
      }
      if (!succeeded(confirm)) {
        fail({ state: 'failed', generation: 'unknown', note: `not confirmed (${tail(confirm)}); ${watchdogNote}` }, `${host}: could not confirm the deploy${steps.target.local ? ' here' : ''}`);
      }
    }
    await diffing;
    deployed = true;
    end({ state: 'deployed', generation: goal === 'dry-activate' ? 'previous' : 'new', effect: steps.reboot ? 'rebooted' : effectOf(goal, previous, newToplevel), ...(rebootNote ? { note: rebootNote } : {}) });
  } finally {
    if (!deployed) stopDiff.abort();
    stopLogin.abort();
    await Promise.all([diffing, loggingIn]);
  }

  /**
   * The new login, retried as a health check is (right after an activation that restarted sshd or the
   * network, new connections may be refused for a moment); its last result.
   */
  async function logInAnew(login: PlannedCommand, health: HostPlan['health']): Promise<CommandResult> {
    const loginSignal = AbortSignal.any([signal, stopLogin.signal]);
    for (let attempt = 0; ; attempt++) {
      const result = await executor.run(fill(login), { signal: loginSignal });
      if (succeeded(result) || result.aborted || loginSignal.aborted || attempt >= (health?.retries ?? 0)) return result;
      await sleep(health?.intervalMs ?? 0, loginSignal);
    }
  }

  async function rollBack(armed: boolean, reason: string): Promise<HostEnd> {
    if (goal === 'dry-activate') return { state: 'failed', generation: 'previous', note: `${reason}; dry-activate changes nothing` };
    if (!steps.rollback) {
      return { state: 'failed', generation: 'unknown', note: `${reason}; not rolled back (--no-rollback)${armed ? '; the watchdog is disarmed only by confirmation' : ''}` };
    }
    say(`rolling back to ${previous.currentSystem || 'the previous profile'}`);
    // Not abortable: a half-done rollback is worse than a finished one.
    const result = await executor.run(fill(steps.rollback));
    return rollbackEnd(host, reason, armed, result, previous, newToplevel, deployment.confirmTimeoutSeconds);
  }
}

/**
 * Runs the closure diff; a failure is not the host's (nixos-rebuild copies
 * what the target could not fetch): it says why there is no diff instead.
 */
async function diffClosures(run: (command: PlannedCommand) => Promise<CommandResult>, command: PlannedCommand): Promise<{ diff?: HostClosureDiff; why?: string } | 'aborted'> {
  const result = await run(command);
  if (result.aborted) return 'aborted';
  if (!succeeded(result)) return { why: outputTail({ stderr: result.stderr, stdout: '' }, 1)[0] ?? `exit ${result.exitCode}` };
  try {
    return { diff: parseClosureDiffOutput(result.stdout) };
  } catch (error) {
    return { why: (error as Error).message };
  }
}

/** How a host ended after its rollback ran, from what the rollback script read on it afterwards. */
function rollbackEnd(host: string, reason: string, armed: boolean, result: CommandResult, previous: Generation, newToplevel: string | undefined, confirmSeconds: number): HostEnd {
  // The script reads the host's generation again after it: report what it is, not what we hope.
  const after = parseRollbackReport(result.stdout);
  const generation = generationAfter(after, previous, newToplevel);
  if (after.watchdogAt !== undefined) {
    const at = new Date(after.watchdogAt * 1000).toISOString();
    return { state: 'rolled-back', generation, note: `${reason}; rolled back by the magic-rollback watchdog on ${host} at ${at}, before the deploy's own rollback reached it` };
  }
  if (succeeded(result)) {
    // The rollback restores the profile link the host had; a host that had none keeps the one this run made.
    const keptProfile = previous.profileLink === '' && Boolean(after.profileLink);
    const detail = keptProfile
      ? `; first deploy: there was no system profile to go back to, so the profile stays ${after.profileLink} (${after.profilePath})`
      : after.outcome === 'unchanged'
        ? ' (nothing had changed on the host)'
        : '';
    return { state: 'rolled-back', generation, note: `rolled back: ${reason}${detail}` };
  }
  const watchdog = armed ? watchdogReverts(host, confirmSeconds, previous) : generation === 'unknown' ? 'its state is unknown' : `it is on its ${generation} generation`;
  return { state: 'failed', generation, note: `${reason}; rollback over SSH failed (${tail(result)}); ${watchdog}` };
}

/**
 * What a goal that succeeded did on the host: `dry-activate` changes nothing
 * whatever it found; a host whose running system and profile both were the
 * new toplevel already is unchanged; otherwise what the goal does.
 */
function effectOf(goal: Goal, previous: Generation, newToplevel: string | undefined): HostEffect {
  if (goal === 'dry-activate') return 'checked';
  if (newToplevel !== undefined && previous.currentSystem === newToplevel && previous.profilePath === newToplevel) return 'unchanged';
  return goalEffect(goal)!;
}

/** Which generation a host is on, from what the rollback read after it ran. */
function generationAfter(after: ReturnType<typeof parseRollbackReport>, previous: Generation, newToplevel: string | undefined): HostEnd['generation'] {
  if (after.profilePath === undefined || after.currentSystem === undefined) return 'unknown';
  if (after.profilePath === previous.profilePath && after.currentSystem === previous.currentSystem) return 'previous';
  if (newToplevel !== undefined && (after.currentSystem === newToplevel || after.profilePath === newToplevel)) return 'new';
  return 'unknown';
}

function watchdogReverts(host: string, seconds: number, previous: Generation): string {
  const reverts = `the magic-rollback watchdog on ${host} reverts it within ${seconds} s of its activation`;
  // Like the deploy's rollback, the watchdog restores a profile link only if the host had one.
  return previous.profileLink === '' ? `${reverts} (its running system: with no earlier system profile to go back to, a profile this run made stays)` : reverts;
}

function interrupted(end: (r: HostEnd) => void, host: string, generation: HostEnd['generation'], note?: string): never {
  end({ state: 'interrupted', generation, note });
  throw new InterruptedError(`${host}: interrupted`);
}

/** The last line of what went wrong: stderr first (the rollback's stdout is its report). */
function tail(result: CommandResult): string {
  return outputTail({ stderr: result.stderr, stdout: '' }, 1)[0] ?? outputTail(result, 1)[0] ?? `exit ${result.exitCode}`;
}
