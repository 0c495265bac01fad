/**
 * One host's deploy, so that it always ends on its previous or its new
 * generation: remember what it runs, arm the magic-rollback watchdog,
 * nixos-rebuild, health checks, then confirm over a new connection. On a
 * failure it is rolled back; where even that cannot reach it, the armed
 * watchdog reverts it by itself.
 */
import { InterruptedError, StageError } from '../errors.ts';
import { type CommandResult, outputTail, succeeded } from '../exec/types.ts';
import type { HostEnd } from '../report/timing.ts';
import type { RunContext } from '../stages/context.ts';
import { describeFailure } from '../stages/failure.ts';
import { healthChecksFor, holdHealthy, runHealthChecks } from './health.ts';
import { type Generation, parseGeneration } from './host-steps.ts';
import { parseRollbackReport } from './remote-scripts.ts';

const CONFIRM_TOO_LATE = 3;

export async function deployHost(ctx: RunContext, host: string, say: (text: string) => void): Promise<void> {
  const { plan, executor, signal, recorder } = ctx;
  const { deploy, goal, inventory } = plan;
  const steps = deploy.steps[host]!;
  const command = deploy.commands[host]!;
  const run = (argv: string[], timeoutMs = inventory.timeouts.connectSeconds * 3000) =>
    executor.run({ argv, timeoutMs }, { signal });
  const end = (result: HostEnd) => recorder.endHost(host, result);
  const fail = (result: HostEnd, message: string): never => {
    end(result);
    throw new StageError(result.note ? `${message}\n  → ${host}: ${result.note}` : message);
  };

  recorder.startHost(host);
  say('reading the current generation');
  const probe = await run(steps.probe);
  if (probe.aborted) return interrupted(end, host, 'previous');
  if (!succeeded(probe)) fail({ state: 'failed', generation: 'previous', note: 'not touched' }, describeFailure(`${host}: cannot read its generation`, { argv: steps.probe, timeoutMs: 0 }, probe));
  const previous = parseGeneration(probe.stdout);

  let armed = false;
  if (deploy.magicRollback) {
    const arm = await run(steps.arm(previous));
    if (arm.aborted) return interrupted(end, host, 'previous');
    if (!succeeded(arm)) fail({ state: 'failed', generation: 'previous', note: 'not touched' }, describeFailure(`${host}: cannot arm the magic rollback`, { argv: steps.arm(previous), timeoutMs: 0 }, arm));
    armed = true;
  }
  const watchdogNote = watchdogReverts(host, deploy.confirmTimeoutSeconds);

  say(`nixos-rebuild ${goal}`);
  const rebuilt = await executor.run(command, { signal, onLine: (line) => say(line) });
  if (rebuilt.aborted) return interrupted(end, host, armed ? 'previous' : 'unknown', armed ? watchdogNote : undefined);
  if (!succeeded(rebuilt)) {
    const why = describeFailure(`${host} failed`, command, rebuilt);
    return fail(await rollBack(ctx, host, previous, armed, 'nixos-rebuild failed', say), why);
  }

  if (goal === 'switch' || goal === 'test') {
    const checks = healthChecksFor(plan.targetInventory, host, executor);
    const health = await runHealthChecks(checks, {
      retries: inventory.health.retries,
      intervalMs: inventory.health.intervalSeconds * 1000,
      signal,
      onProgress: say,
    });
    if (signal.aborted) return interrupted(end, host, armed ? 'previous' : 'unknown', armed ? watchdogNote : undefined);
    if (health.failed) {
      const why = `${host}: health check failed after ${health.failed.attempts} attempt(s): ${health.failed.check}: ${health.failed.reason}`;
      return fail(await rollBack(ctx, host, previous, armed, 'health check failed', say), why);
    }
    // A unit that starts and dies seconds later passes one round of checks: they must hold.
    const settleSeconds = inventory.health.settleSeconds;
    if (settleSeconds > 0) {
      const held = await holdHealthy(checks, { durationMs: settleSeconds * 1000, intervalMs: inventory.health.intervalSeconds * 1000, signal, onProgress: say });
      if (signal.aborted) return interrupted(end, host, armed ? 'previous' : 'unknown', armed ? watchdogNote : undefined);
      if (held.failed) {
        const why = `${host}: health check failed ${held.failed.afterSeconds} s after activation, within the ${settleSeconds} s settle window: ${held.failed.check}: ${held.failed.reason}`;
        return fail(await rollBack(ctx, host, previous, armed, 'health check failed in the settle window', say), why);
      }
    }
  }

  if (armed) {
    say('confirming over a new SSH connection');
    const confirm = await run(steps.confirm);
    if (confirm.exitCode === CONFIRM_TOO_LATE) {
      // The canary was gone: read what the host runs, rather than assume the watchdog's rollback worked.
      const now = parseRollbackReport(confirm.stdout);
      const generation = generationAfter(now, previous, ctx.toplevels?.[host]?.outPath);
      const by = now.watchdogAt !== undefined ? `the watchdog rolled it back at ${new Date(now.watchdogAt * 1000).toISOString()}` : 'the watchdog had removed its canary without rolling back (it gave up waiting, or its rollback failed)';
      fail(
        { state: now.watchdogAt !== undefined && generation === 'previous' ? 'rolled-back' : 'failed', generation, note: `confirmation came too late: ${by}` },
        `${host}: not confirmed in time`,
      );
    }
    if (!succeeded(confirm)) {
      fail({ state: 'failed', generation: 'unknown', note: `not confirmed (${tail(confirm)}); ${watchdogNote}` }, `${host}: could not confirm the deploy over a new SSH connection`);
    }
  }
  end({ state: 'deployed', generation: goal === 'dry-activate' ? 'previous' : 'new' });
}

async function rollBack(ctx: RunContext, host: string, previous: Generation, armed: boolean, reason: string, say: (t: string) => void): Promise<HostEnd> {
  const { deploy, goal } = ctx.plan;
  if (goal === 'dry-activate') return { state: 'failed', generation: 'previous', note: `${reason}; dry-activate changes nothing` };
  if (!deploy.rollback) {
    return { state: 'failed', generation: 'unknown', note: `${reason}; not rolled back (--no-rollback)${armed ? '; the watchdog is disarmed only by confirmation' : ''}` };
  }
  say(`rolling back to ${previous.currentSystem || 'the previous profile'}`);
  const argv = deploy.steps[host]!.rollback(previous);
  // Not abortable: a half-done rollback is worse than a finished one.
  const result = await ctx.executor.run({ argv, timeoutMs: ctx.plan.inventory.timeouts.deployMinutes * 60_000 });
  // The script reads the host's generation again after it: report what it is, not what we hope.
  const after = parseRollbackReport(result.stdout);
  const generation = generationAfter(after, previous, ctx.toplevels?.[host]?.outPath);
  if (after.watchdogAt !== undefined) {
    const at = new Date(after.watchdogAt * 1000).toISOString();
    return { state: 'rolled-back', generation, note: `${reason}; rolled back by the magic-rollback watchdog on ${host} at ${at}, before the deploy's own rollback reached it` };
  }
  if (succeeded(result)) {
    const unchanged = after.outcome === 'unchanged' ? ' (nothing had changed on the host)' : '';
    return { state: 'rolled-back', generation, note: `rolled back: ${reason}${unchanged}` };
  }
  const watchdog = armed ? watchdogReverts(host, deploy.confirmTimeoutSeconds) : generation === 'unknown' ? 'its state is unknown' : `it is on its ${generation} generation`;
  return { state: 'failed', generation, note: `${reason}; rollback over SSH failed (${tail(result)}); ${watchdog}` };
}

/** Which generation a host is on, from what the rollback read after it ran. */
function generationAfter(after: ReturnType<typeof parseRollbackReport>, previous: Generation, newToplevel: string | undefined): HostEnd['generation'] {
  if (after.profilePath === undefined || after.currentSystem === undefined) return 'unknown';
  if (after.profilePath === previous.profilePath && after.currentSystem === previous.currentSystem) return 'previous';
  if (newToplevel !== undefined && (after.currentSystem === newToplevel || after.profilePath === newToplevel)) return 'new';
  return 'unknown';
}

function watchdogReverts(host: string, seconds: number): string {
  return `the magic-rollback watchdog on ${host} reverts it within ${seconds} s of its activation`;
}

function interrupted(end: (r: HostEnd) => void, host: string, generation: HostEnd['generation'], note?: string): never {
  end({ state: 'interrupted', generation, note });
  throw new InterruptedError(`${host}: interrupted`);
}

/** The last line of what went wrong: stderr first (the rollback's stdout is its report). */
function tail(result: CommandResult): string {
  return outputTail({ stderr: result.stderr, stdout: '' }, 1)[0] ?? outputTail(result, 1)[0] ?? `exit ${result.exitCode}`;
}
