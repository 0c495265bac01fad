/** An Executor for unit tests: records every command and answers from a script of responses. */
import { splitQuoted } from '../../bench/analysis.ts';
import type { CommandLogEntry, CommandResult, CommandSpec, Executor, RunOptions } from '../../lib/exec/types.ts';
import { formatHealthRound, HEALTH_ROUND, HEALTH_ROUND_NAME } from '../../lib/remote/health-round.ts';
import { shellQuote } from '../../lib/util/shell.ts';

export interface ScriptedResponse {
  readonly exitCode?: number;
  readonly stdout?: string;
  readonly stderr?: string;
  /** lines handed to onLine as stderr, as a streaming command would */
  readonly lines?: readonly string[];
  /** more lines handed to onLine once `after` settles (before `until`) */
  readonly later?: { readonly after: Promise<unknown>; readonly lines: readonly string[] };
  /** the command runs until this settles (then answers as scripted) */
  readonly until?: Promise<unknown>;
  /** with until: its run being aborted ends it sooner (answered aborted, as a killed process) */
  readonly abortable?: boolean;
  /** the command runs until its run is aborted (then answers aborted, as a killed process) */
  readonly untilAborted?: boolean;
  /** with untilAborted: how long the killed process takes to exit (ms; default at once) */
  readonly diesAfterMs?: number;
}

export type Responder = (spec: CommandSpec) => ScriptedResponse | undefined;

export class RecordingExecutor implements Executor {
  readonly log: CommandLogEntry[] = [];
  readonly calls: CommandSpec[] = [];
  /** what each of `calls` answered, at the same index */
  readonly results: CommandResult[] = [];

  constructor(private readonly responders: readonly Responder[] = []) {}

  async run(spec: CommandSpec, options: RunOptions = {}): Promise<CommandResult> {
    const index = this.calls.push(spec) - 1;
    const respond = (asked: CommandSpec) => this.responders.map((responder) => responder(asked)).find((r) => r !== undefined) ?? {};
    const round = healthRoundChecks(spec);
    const response = round ? answerRound(round.map(respond)) : respond(spec);
    for (const line of response.lines ?? []) options.onLine?.(line, 'stderr');
    await Promise.resolve();
    const startedAt = Date.now();
    if (response.later) {
      await response.later.after;
      for (const line of response.later.lines) options.onLine?.(line, 'stderr');
    }
    const killed = () => new Promise<true>((resolve) => (options.signal?.aborted ? resolve(true) : options.signal?.addEventListener('abort', () => resolve(true), { once: true })));
    const cut = response.abortable ? await Promise.race([Promise.resolve(response.until).then(() => false), killed()]) : (await response.until, false);
    const aborted = response.untilAborted === true || cut;
    if (response.untilAborted) {
      await killed();
      await new Promise((resolve) => setTimeout(resolve, response.diesAfterMs ?? 0));
    }
    const result: CommandResult = {
      argv: spec.argv,
      exitCode: response.exitCode ?? 0,
      signal: null,
      stdout: response.stdout ?? '',
      stderr: response.stderr ?? '',
      startedAt,
      durationMs: 0,
      timedOut: false,
      aborted,
    };
    this.results[index] = result;
    this.log.push({ argv: spec.argv, exitCode: result.exitCode, startedAt, durationMs: 0 });
    return result;
  }

  /** The program and first argument of each call, e.g. "nix eval" or "nixos-rebuild switch". */
  summary(): string[] {
    return this.calls.map((c) => {
      const words = c.argv[0] === 'nix' && c.argv[1] === '--log-format' ? ['nix', c.argv[3]] : c.argv.slice(0, 2);
      return words.join(' ');
    });
  }
}

/** `sh -c <script> <name> <number of checks>` before the checks, each `<count> <argv…>`. */
const WORDS_BEFORE_CHECKS = 5;

/**
 * A health round's checks (lib/remote/health-round.ts), each as the command
 * it would be run alone over the same ssh (or here): undefined for any
 * other command. The responders answer each check as they would that
 * command.
 */
export function healthRoundChecks(spec: CommandSpec): CommandSpec[] | undefined {
  const ssh = spec.argv[0] === 'ssh';
  const words = ssh ? remoteWordsOrNone(spec.argv) : [...spec.argv];
  if (words[0] !== 'sh' || words[1] !== '-c' || words[2] !== HEALTH_ROUND || words[3] !== HEALTH_ROUND_NAME) return undefined;
  const checks: string[][] = [];
  for (let at = WORDS_BEFORE_CHECKS; checks.length < Number(words[4]); ) {
    const count = Number(words[at]);
    checks.push(words.slice(at + 1, at + 1 + count));
    at += 1 + count;
  }
  // As strict as the script: a word list that does not end with the last check would make it fail.
  if (checks.some((argv) => argv.length === 0) || checks.flat().length + checks.length + WORDS_BEFORE_CHECKS !== words.length) throw new Error(`not a health round's words: ${words.slice(3).join(' ')}`);
  return checks.map((argv) => ({ ...spec, argv: ssh ? [...spec.argv.slice(0, -1), argv.map(shellQuote).join(' ')] : argv }));
}

/**
 * The round's answer from its checks' answers, as the round script prints
 * them. A check answered as running on (until, untilAborted, later lines) is
 * where the round stands while it runs: the checks before it ended, then
 * that answer for the round. The first check answered as ssh failing (255)
 * is the session failing: nothing printed; a later one's 255 is its status.
 */
function answerRound(answers: readonly ScriptedResponse[]): ScriptedResponse {
  const runsOn = (a: ScriptedResponse, index: number) => a.until !== undefined || a.untilAborted || a.later !== undefined || a.lines !== undefined || (index === 0 && a.exitCode === 255);
  const ended = answers.map((a) => ({ exitCode: a.exitCode ?? 0, stdout: a.stdout ?? '', stderr: a.stderr ?? '' }));
  const at = answers.findIndex(runsOn);
  if (at < 0) return { exitCode: 0, ...formatHealthRound(ended) };
  if (at === 0 && answers[0]!.exitCode === 255) return answers[0]!;
  const sofar = formatHealthRound(ended, at);
  return { ...answers[at], stdout: sofar.stdout + (answers[at]!.stdout ?? ''), stderr: sofar.stderr + (answers[at]!.stderr ?? '') };
}

function remoteWordsOrNone(argv: readonly string[]): string[] {
  try {
    return remoteWords(argv);
  } catch {
    return [];
  }
}

/** Answers commands that contain all the given words: as argv elements, or as words of ssh's remote command. */
export function when(words: readonly string[], response: ScriptedResponse | ((spec: CommandSpec) => ScriptedResponse)): Responder {
  const has = (spec: CommandSpec, word: string) => spec.argv.some((arg) => arg === word || arg.split(' ').includes(word));
  return (spec) => (words.every((w) => has(spec, w)) ? (typeof response === 'function' ? response(spec) : response) : undefined);
}

/** One word as lib/util/shell.ts quotes it: safe characters bare, anything else within '…', a quote as \'. */
const QUOTED_WORD = /(?:[A-Za-z0-9_@%+=:,./-]|'[^']*'|\\')+/.source;
const QUOTED_LINE = new RegExp(`^${QUOTED_WORD}(?: ${QUOTED_WORD})*$`);

/**
 * The arguments an ssh command line's remote command reaches its program
 * with: the words the remote login shell makes of ssh's last argument.
 * Throws unless the line is only words quoted as lib/util/shell.ts quotes
 * them, so a quoting mistake cannot pass for words.
 */
export function remoteWords(argv: readonly string[]): string[] {
  const line = argv.at(-1) ?? '';
  if (!QUOTED_LINE.test(line)) throw new Error(`not a line of quoted words: ${line}`);
  return splitQuoted(line);
}
