/**
 * One round of a host's command health checks in one command on the target,
 * so one ssh session per round instead of one per check: at 30 hosts, ~120
 * fewer sessions (each an ssh client, an sshd session and a login shell).
 * This module is the one place that knows the round's output.
 *
 * The script is a constant; every check's argv reaches it as positional
 * arguments (`<n> <argc₁> <argv₁…> … <argcₙ> <argvₙ…>`), never spliced into
 * its text.
 */
import { type RemoteHost, remoteArgv } from './host.ts';

/** The first word after the script (its $0): names the script in `ps`, the command log and the dry run. */
export const HEALTH_ROUND_NAME = 'avalanche-health';

/** Starts the round's marker lines; no check prints it by chance. */
const MARK = '@@avalanche-health';

/**
 * Runs the checks one after the other, each in a subshell (a check cannot
 * end or replace the script; its helper's name is no command's), stdin from
 * /dev/null, between marker lines on their own lines (each after a newline
 * of its own, so a banner or output without one cannot hide it): on stdout
 * and stderr `<mark> <i> begin` before check i, on stdout
 * `<mark> <i> end <status>` after it, on stderr `<mark> done` at the end.
 * Builtins only besides the checks: the target pays one shell and a fork
 * per check. No per-check timeout (coreutils' `timeout` would be a process
 * per check): the round has one bound, and the first check without its end
 * line is the one that hung.
 */
export const HEALTH_ROUND = `
n=$1; shift
avalanche_health_check() {
  c=$1; shift; m=$#; k=0
  while [ "$k" -lt "$c" ]; do set -- "$@" "$1"; shift; k=$((k + 1)); done
  shift $((m - c))
  "$@" </dev/null
}
i=0
while [ "$i" -lt "$n" ]; do
  printf '\\n%s\\n' "${MARK} $i begin"; printf '\\n%s\\n' "${MARK} $i begin" >&2
  (avalanche_health_check "$@"); s=$?
  printf '\\n%s\\n' "${MARK} $i end $s"
  shift $(($1 + 1)); i=$((i + 1))
done
printf '\\n%s\\n' "${MARK} done" >&2
`;

/**
 * argv that runs one round of `checks` (each an argv run on the target as
 * its deploy user, in this order) on `target`.
 */
export function healthRoundArgv(target: RemoteHost, checks: readonly (readonly string[])[]): string[] {
  if (checks.some((argv) => argv.length === 0)) throw new Error('a health check needs a command: its argv is empty');
  const args = checks.flatMap((argv) => [String(argv.length), ...argv]);
  return remoteArgv(target, ['sh', '-c', HEALTH_ROUND, HEALTH_ROUND_NAME, String(checks.length), ...args]);
}

/** What one check of a round did. */
export interface CheckAnswer {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The answers in the round's output, by check index: the checks that ended.
 * The first check missing is the one running when the round ended (it hung,
 * or the round was cut short: ssh failed, the round timed out); check 0 is
 * missing too when the session never began. What a login shell prints before
 * the first marker is nobody's. Output is kept as lines: whether a check's
 * last line ended with a newline is not.
 */
export function parseHealthRound(output: { readonly stdout: string; readonly stderr: string }): Map<number, CheckAnswer> {
  const stdout = segments(output.stdout).checks;
  const stderr = segments(output.stderr).checks;
  const answers = new Map<number, CheckAnswer>();
  for (const [index, { text, end }] of stdout) {
    if (end !== undefined) answers.set(index, { exitCode: end, stdout: text, stderr: stderr.get(index)?.text ?? '' });
  }
  return answers;
}

/**
 * Each check's text between its begin marker and the next marker, and the
 * status its end marker gave; and the lines that are no check's (before the
 * first marker, between a check's end and the next, after the last).
 */
function segments(output: string): { checks: Map<number, { text: string; end?: number }>; outside: string } {
  const checks = new Map<number, { text: string; end?: number }>();
  const outside: string[] = [];
  let index: number | undefined;
  let lines: string[] = [];
  const close = (end?: number) => {
    // The script's own newline before a marker leaves one empty line at most.
    if (lines.at(-1) === '') lines.pop();
    if (index !== undefined) checks.set(index, { text: lines.join('\n'), ...(end === undefined ? {} : { end }) });
    else outside.push(...lines);
    index = undefined;
  };
  for (const line of output.split('\n')) {
    const marker = MARKER.exec(line.replace(/\r$/, ''));
    if (!marker) {
      lines.push(line);
      continue;
    }
    close(marker[3] === undefined ? undefined : Number(marker[3]));
    if (marker[2] === 'begin') index = Number(marker[1]);
    lines = [];
  }
  close();
  return { checks, outside: outside.join('\n') };
}

const MARKER = new RegExp(`^${MARK}(?: (\\d+) (begin|end (\\d+))| done)$`);

/**
 * The round's output for its checks' answers, as {@link HEALTH_ROUND} prints
 * it (for stand-ins of the script in tests); with `runningAt`, as it stands
 * while that check runs: the ones before it ended, its begin markers.
 */
export function formatHealthRound(answers: readonly CheckAnswer[], runningAt?: number): { stdout: string; stderr: string } {
  const ended = answers.slice(0, runningAt);
  const running = runningAt === undefined ? { stdout: '', stderr: `\n${MARK} done\n` } : { stdout: `\n${MARK} ${runningAt} begin\n`, stderr: `\n${MARK} ${runningAt} begin\n` };
  return {
    stdout: ended.map((a, i) => `\n${MARK} ${i} begin\n${a.stdout}\n${MARK} ${i} end ${a.exitCode}\n`).join('') + running.stdout,
    stderr: ended.map((a, i) => `\n${MARK} ${i} begin\n${a.stderr}`).join('') + running.stderr,
  };
}

/**
 * What check `index` printed so far, on stdout and stderr, ended or not;
 * for a check that never began, everything outside the checks (a session
 * that failed says why there): the words to tell a round cut short by.
 */
export function outputOf(output: { readonly stdout: string; readonly stderr: string }, index: number): { stdout: string; stderr: string } {
  const stdout = segments(output.stdout);
  const stderr = segments(output.stderr);
  const began = stdout.checks.get(index);
  if (!began) return { stdout: stdout.outside, stderr: stderr.outside };
  return { stdout: began.text, stderr: stderr.checks.get(index)?.text ?? '' };
}
