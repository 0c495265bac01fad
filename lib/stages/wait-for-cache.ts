/**
 * Stage 4: the cache serves every toplevel, signed by the trusted key, before
 * any target asks for it. --allow-unsigned accepts any signature, and says so.
 */
import type { ListrTask } from 'listr2';
import { waitForNarInfo } from '../cache/client.ts';
import { cacheUnreachableHints, pathMissingHints, signatureProblem } from '../cache/hints.ts';
import { parsePublicKey } from '../cache/narinfo.ts';
import { InterruptedError, StageError } from '../errors.ts';
import { deployRun, type RunContext } from './context.ts';
import { fillText } from '../plan/placeholders.ts';
import { subtaskList } from './subtasks.ts';

export function waitForCacheTask(): ListrTask<RunContext> {
  return {
    title: 'wait for cache',
    task: (ctx, task) => {
      const { waitForCache } = deployRun(ctx).plan;
      const trusted = [parsePublicKey(waitForCache.publicKey)];
      return subtaskList(
        task,
        waitForCache.narinfos.map(({ host, ...narinfo }) => ({
          title: `${host}: toplevel served by ${waitForCache.cacheUrl}`,
          run: async (sub) => {
            const storePath = fillText(narinfo.storePath, ctx.values);
            const outcome = await waitForNarInfo(fillText(narinfo.url, ctx.values), storePath, trusted, {
              maxDelayMs: waitForCache.pollMaxMs,
              timeoutMs: waitForCache.timeoutMs,
              requestTimeoutMs: waitForCache.requestTimeoutMs,
              signal: ctx.signal,
              onPoll: (attempt, probe) => {
                sub.output = probe instanceof Error ? `poll ${attempt}: ${probe.message}` : `poll ${attempt}: ${probe.state}`;
              },
            });
            if (ctx.signal.aborted) throw new InterruptedError();
            if (outcome.state === 'timeout') {
              const why = outcome.lastError ? `the cache did not answer (${outcome.lastError.message})` : 'not served';
              throw new StageError(
                `${host}: ${storePath} ${why} after ${Math.round(waitForCache.timeoutMs / 1000)} s`,
                outcome.lastError ? cacheUnreachableHints(waitForCache.cacheUrl) : pathMissingHints(waitForCache.cacheUrl),
              );
            }
            if (!outcome.signature.ok) {
              const problem = signatureProblem(outcome.signature, waitForCache.cacheUrl);
              if (!waitForCache.allowUnsigned) throw new StageError(`${host}: ${storePath}: ${problem.message}`, [problem.hint]);
              (ctx.warnings ??= []).push(`${host}: ${storePath}: ${problem.message} — accepted because of --allow-unsigned`);
              sub.title = `${host}: served, ${problem.message} — ACCEPTED (--allow-unsigned)`;
              return;
            }
            sub.title = `${host}: served, signed by ${outcome.signature.keyName} (${outcome.attempts} poll${outcome.attempts > 1 ? 's' : ''})`;
          },
        })),
        { noun: 'toplevels' },
      );
    },
  };
}
