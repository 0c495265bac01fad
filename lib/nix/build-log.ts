/**
 * Reads `nix --log-format internal-json` output: which derivation was built
 * where, its log lines, and Nix's own messages. Lines that are not `@nix`
 * JSON pass through as text.
 *
 * The format (Nix's `JSONLogger`, src/libutil/logging.cc), one record per
 * line on stderr, `@nix ` and a JSON object:
 * - `{"action":"start","id":N,"level":L,"type":T,"text":…,"fields":[…]}`
 *   (newer Nix, not 2.8, also `"parent":N`); a build is type 105 (actBuild) with
 *   `fields` = [drvPath, machine, round, nrRounds], machine "" for a build
 *   on the machine that runs Nix (src/libstore/build/derivation-goal.cc);
 * - `{"action":"result","id":N,"type":101,"fields":[line]}`: a line of the
 *   build log of activity N (resBuildLogLine), coloured as the builder wrote it;
 * - `{"action":"msg","level":L,"msg":…}` (errors also with `raw_msg`,
 *   `file`, `line`, `column`, as in 2.8): a message, coloured; levels
 *   0 error, 1 warn, 2 notice, 3 info, 4 talkative, 5 chatty, 6 debug, 7 vomit;
 * - `{"action":"stop","id":N}`: activity N ended (a build's end is timed
 *   here); results of types 104–106 (phase, progress, expected counts):
 *   most of a build's records, ignored here.
 *
 * Activity ids are `(pid << 32) + counter` of the process that made the
 * activity (with a daemon: the daemon's worker), so on hosts with a large
 * `pid_max` they exceed 2^53 and JSON.parse would round neighbours onto one
 * number: ids are read from the raw text as decimal strings instead.
 */
import { type CommandResult, type OutputStream, outputTail } from '../exec/types.ts';

export type BuildLogEvent =
  | { readonly kind: 'build-start'; readonly drvPath: string; readonly machine: string | undefined }
  /** a build's stop record (after it succeeded or failed): for a remote build, once its outputs are copied back */
  | { readonly kind: 'build-stop'; readonly drvPath: string }
  | { readonly kind: 'build-log'; readonly drvName: string; readonly line: string }
  | { readonly kind: 'message'; readonly level: number; readonly text: string }
  | { readonly kind: 'activity'; readonly text: string }
  | { readonly kind: 'text'; readonly text: string };

export interface BuildRecord {
  readonly drvPath: string;
  /** the builder URI, or undefined when built on the machine that ran nix */
  readonly machine: string | undefined;
  /**
   * When this process read the build's start and stop records (epoch ms):
   * the log carries no times, but Nix writes each record as it happens
   * (a remote build's stop once its outputs are copied back). `endedAt`
   * is absent when no stop was read (the build failed or was cut off).
   */
  readonly startedAt?: number | undefined;
  readonly endedAt?: number | undefined;
}

const ACT_BUILD = 105;
const RES_BUILD_LOG_LINE = 101;

/** Nix's verbosity levels (src/libutil/logging.hh `Verbosity`). */
export const NixLevel = { error: 0, warn: 1, notice: 2, info: 3 } as const;

// Nix colours its messages even in JSON, and build logs carry the builder's own colours.
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]/g;

/** `text` without ANSI escape sequences (colours, cursor movement). */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

export function drvName(drvPath: string): string {
  return drvPath.replace(/^.*\/[0-9a-z]{32}-/, '').replace(/\.drv$/, '');
}

// A JSON string token, optionally followed by `: <integer>` (then it was a key and its value).
const KEY_OR_STRING = /"((?:[^"\\]|\\.)*)"(?:\s*:\s*(\d+)(?![.\deE]))?/g;

/**
 * The integer values of `keys` in one JSON object's raw text, as exact
 * decimal strings (the first occurrence of each key). Whole string tokens are
 * consumed, so a key-like text inside a string value is never mistaken for a key.
 */
export function exactIntegers(json: string, keys: readonly string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const match of json.matchAll(KEY_OR_STRING)) {
    const [, key, digits] = match;
    if (digits !== undefined && key !== undefined && keys.includes(key) && !found.has(key)) found.set(key, digits);
  }
  return found;
}

/**
 * The one parser of Nix's internal-json log lines. Stateful: it remembers
 * which activity builds which derivation, so build-log lines name their
 * derivation; ids are kept as exact strings.
 */
export class BuildLogParser {
  readonly builds: BuildRecord[] = [];
  private readonly drvByActivity = new Map<string, string>();
  /** the open build activities: their index in `builds` */
  private readonly buildByActivity = new Map<string, number>();

  /** Whether a build Nix said it began has not yet been said to have ended. */
  get building(): boolean {
    return this.buildByActivity.size > 0;
  }

  /** `now`: the clock a build's start and stop are read by (epoch ms) */
  constructor(private readonly now: () => number = Date.now) {}

  /** One output line; undefined for records that say nothing worth showing (progress, other activities' stops, debug). */
  parse(line: string): BuildLogEvent | undefined {
    return this.parseRecord(line)?.event;
  }

  /** Like parse, with the derivation a build-log line belongs to. */
  parseRecord(line: string): { readonly event: BuildLogEvent; readonly drvPath?: string | undefined } | undefined {
    if (!line.startsWith('@nix ')) return { event: { kind: 'text', text: line } };
    const raw = line.slice(5);
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return { event: { kind: 'text', text: line } };
    }
    if (typeof event !== 'object' || event === null) return { event: { kind: 'text', text: line } };
    const id = exactIntegers(raw, ['id']).get('id');
    const fields = Array.isArray(event.fields) ? (event.fields as unknown[]) : [];
    if (event.action === 'start' && event.type === ACT_BUILD && typeof fields[0] === 'string') {
      const drvPath = fields[0];
      const machine = typeof fields[1] === 'string' && fields[1] !== '' ? fields[1] : undefined;
      if (id !== undefined) {
        this.drvByActivity.set(id, drvPath);
        this.buildByActivity.set(id, this.builds.length);
      }
      this.builds.push({ drvPath, machine, startedAt: this.now() });
      return { event: { kind: 'build-start', drvPath, machine } };
    }
    if (event.action === 'stop' && id !== undefined && this.buildByActivity.has(id)) {
      const index = this.buildByActivity.get(id)!;
      this.buildByActivity.delete(id);
      this.builds[index] = { ...this.builds[index]!, endedAt: this.now() };
      return { event: { kind: 'build-stop', drvPath: this.builds[index]!.drvPath } };
    }
    if (event.action === 'result' && event.type === RES_BUILD_LOG_LINE && typeof fields[0] === 'string') {
      const drvPath = id === undefined ? undefined : this.drvByActivity.get(id);
      return { event: { kind: 'build-log', drvName: drvPath ? drvName(drvPath) : '?', line: stripAnsi(fields[0]) }, drvPath };
    }
    if (event.action === 'msg' && typeof event.msg === 'string') {
      return { event: { kind: 'message', level: Number(event.level ?? 0), text: stripAnsi(event.msg) } };
    }
    if (event.action === 'start' && typeof event.text === 'string' && event.text !== '' && Number(event.level) <= NixLevel.info) {
      return { event: { kind: 'activity', text: stripAnsi(event.text) } };
    }
    return undefined;
  }
}

/**
 * The setting names a Nix daemon said it ignored because the client's user
 * is not trusted. The daemon (src/libstore/daemon.cc, `ClientSettings::apply`)
 * words it "ignoring the client-specified setting 'builders', because it is a
 * restricted setting and you are not a trusted user" as a warning from Nix
 * 2.22 (NixOS/nix#10274; so in 2.26); Nix 2.4 to 2.21 (2.8 here) log the same
 * text at debug level only, so it is usually absent there and its absence
 * proves nothing; Nix 2.3 warned "ignoring the user-specified setting …";
 * Lix warns "Ignoring the client-specified setting …". The daemon forwards it
 * to the client as a plain line that the client re-logs at error level, with
 * the coloured "warning:" prefix in its text.
 */
export function ignoredRestrictedSetting(message: string): string | undefined {
  return /ignoring the (?:client|user)-specified setting '([^']+)', because it is a restricted setting/i.exec(stripAnsi(message))?.[1];
}

const DRV_PATH = /\/nix\/store\/[0-9a-z]{32}-[^'"\s]+?\.drv/g;

export interface BuildLogRecorderOptions {
  /** build-log lines kept per derivation (the last ones) */
  readonly logLinesPerDrv?: number;
  /** messages and stray stderr lines kept (the last ones) */
  readonly maxNotes?: number;
  /** derivations whose log tail a failure description shows */
  readonly maxFailedDrvs?: number;
  /** the clock builds are timed by (epoch ms; default Date.now) */
  readonly now?: () => number;
}

/**
 * A bounded record of what a `nix --log-format internal-json build` said that
 * matters after the fact: every build start (which machine built what), the
 * messages at error, warn and notice level, other stderr lines that are not
 * log records (e.g. ssh's own), the last lines of each derivation's build log,
 * and the restricted settings a daemon ignored. Raw log records are never kept.
 */
export class BuildLogRecorder {
  private readonly parser: BuildLogParser;
  private readonly notes: string[] = [];
  private readonly logTails = new Map<string, string[]>();
  private readonly ignored = new Set<string>();
  private lastLogged: string | undefined;
  private readonly logLinesPerDrv: number;
  private readonly maxNotes: number;
  private readonly maxFailedDrvs: number;

  constructor(options: BuildLogRecorderOptions = {}) {
    this.logLinesPerDrv = options.logLinesPerDrv ?? 20;
    this.maxNotes = options.maxNotes ?? 30;
    this.maxFailedDrvs = options.maxFailedDrvs ?? 3;
    this.parser = new BuildLogParser(options.now);
  }

  /** Every build start, in order: the derivation and the machine Nix reported for it (`fields[1]`). */
  get builds(): readonly BuildRecord[] {
    return this.parser.builds;
  }

  /** Restricted settings the daemon said it ignored (e.g. "builders"). */
  get ignoredSettings(): ReadonlySet<string> {
    return this.ignored;
  }

  /** The kept messages and stderr lines, without colours, in order. */
  get messages(): readonly string[] {
    return this.notes;
  }

  /** The last build-log lines of `drvPath` (without colours), oldest first. */
  logTail(drvPath: string): readonly string[] {
    return this.logTails.get(drvPath) ?? [];
  }

  /**
   * Records one output line and returns its event for a live display.
   * stdout is not recorded (`nix build --json` prints its result there).
   */
  add(line: string, stream: OutputStream = 'stderr'): BuildLogEvent | undefined {
    const parsed = this.parser.parseRecord(line);
    if (!parsed || stream === 'stdout') return parsed?.event;
    const { event, drvPath } = parsed;
    if (event.kind === 'build-log' && drvPath !== undefined) {
      const tail = this.logTails.get(drvPath) ?? [];
      tail.push(event.line.trimEnd());
      if (tail.length > this.logLinesPerDrv) tail.shift();
      this.logTails.set(drvPath, tail);
      this.lastLogged = drvPath;
    } else if (event.kind === 'message' && event.level <= NixLevel.notice) {
      const setting = ignoredRestrictedSetting(event.text);
      if (setting !== undefined) this.ignored.add(setting);
      this.note(event.text);
    } else if (event.kind === 'text' && event.text.trim() !== '' && !isOutputNoise(event.text)) {
      this.note(event.text);
    }
    return event;
  }

  private note(text: string): void {
    const clean = stripAnsi(text).trimEnd();
    // A daemon repeats its warnings once per connection.
    if (this.notes.includes(clean)) return;
    this.notes.push(clean);
    if (this.notes.length > this.maxNotes) this.notes.shift();
  }

  /**
   * The derivations a failure is about: those named by the kept messages
   * that have a build log, else the one that logged last.
   */
  failedDrvs(): string[] {
    const named = [...new Set(this.notes.flatMap((note) => note.match(DRV_PATH) ?? []))].filter((d) => this.logTails.has(d));
    const drvs = named.length ? named : this.lastLogged ? [this.lastLogged] : [];
    return drvs.slice(-this.maxFailedDrvs);
  }

  /**
   * What a failed build said, as lines for an error message: the kept
   * messages (multi-line ones split), then the last build-log lines of each
   * failed derivation under a heading naming it and where it was built.
   */
  failureLines(): string[] {
    const lines = this.notes.flatMap((note) => note.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() !== ''));
    for (const drvPath of this.failedDrvs()) {
      const tail = this.logTail(drvPath);
      const machine = [...this.builds].reverse().find((b) => b.drvPath === drvPath)?.machine;
      lines.push(`${drvName(drvPath)} on ${machine ?? 'this machine'}, last ${tail.length} log line${tail.length === 1 ? '' : 's'}:`);
      lines.push(...tail.map((l) => `  ${l}`));
    }
    return lines;
  }
}

/**
 * Whether Nix's machine name for a build (`fields[1]` of a build start) is
 * the builder `expectedUri`: Nix reports the store URI it chose, with any
 * `?param=…` it was given, so both are compared without their parameters.
 * A build on the machine running Nix (undefined) is never the builder.
 */
export function isBuiltOn(machine: string | undefined, expectedUri: string): boolean {
  const bare = (uri: string) => uri.replace(/[?#].*$/, '').replace(/\/+$/, '');
  return machine !== undefined && bare(machine) === bare(expectedUri);
}

/**
 * Lines of Nix's and nixos-rebuild's output that tell an operator nothing,
 * left out of what the deploy shows live and of a failure's output tail:
 * Nix's "copying 0 paths" (said once per copy with nothing to copy; the
 * human log ends it with "..."), the result `nix build --json` prints on
 * stdout (a machine format, read by parseBuildResults), and ssh's
 * "Pseudo-terminal will not be allocated" (the bash-era nixos-rebuild asks
 * for a terminal for sudo; without one it works all the same).
 */
export function isOutputNoise(line: string): boolean {
  const text = stripAnsi(line).trim();
  return (
    /^copying 0 paths(?:\.\.\.)?$/.test(text) ||
    /^\[\s*\{\s*"drvPath"\s*:/.test(text) ||
    text === 'Pseudo-terminal will not be allocated because stdin is not a terminal.'
  );
}

/**
 * The last `count` lines a command printed (stderr, then stdout) that say
 * something: no noise, no raw internal-json records. For a failure's
 * description where no parsed log tells it better.
 */
export function tailWithoutNoise(result: Pick<CommandResult, 'stdout' | 'stderr'>, count = 15): string[] {
  return outputTail(result, Number.POSITIVE_INFINITY)
    .filter((line) => !line.startsWith('@nix ') && !isOutputNoise(line))
    .slice(-count);
}

/** What `nix build --json` prints on stdout: one entry per installable, in order. */
export function parseBuildResults(stdout: string): { drvPath: string; outputs: Record<string, string> }[] {
  const parsed: unknown = JSON.parse(stdout);
  if (!Array.isArray(parsed)) throw new Error('nix build --json did not print a list');
  return parsed as { drvPath: string; outputs: Record<string, string> }[];
}
