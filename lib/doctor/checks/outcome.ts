/** Building blocks the checks share for commands that did not work. */
import { type CommandResult, outputTail } from '../../exec/types.ts';
import { exitStatus } from '../../exec/describe.ts';
import type { CheckOutcome } from '../types.ts';
import type { Ran } from '../probes.ts';

/** ssh's own failures (no route, refused, key or host key rejected) exit 255; the remote command's status otherwise. */
export function sshFailed(result: CommandResult): boolean {
  return result.exitCode === 255 || result.timedOut;
}

export function outputDetails(result: CommandResult): string[] {
  return outputTail(result, 5).map((line) => `| ${line}`);
}

export function commandFailed(what: string, ran: Ran<unknown>, hints: readonly string[], tried: readonly string[] = [ran.tried]): CheckOutcome {
  return { status: 'fail', summary: `${what} ${exitStatus(ran.result)}`, tried, details: outputDetails(ran.result), hints };
}

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
