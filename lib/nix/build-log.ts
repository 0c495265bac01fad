/**
 * Reads `nix --log-format internal-json` output: which derivation was built
 * where, its log lines, and Nix's own messages. Lines that are not `@nix`
 * JSON pass through as text.
 */

export type BuildLogEvent =
  | { readonly kind: 'build-start'; readonly drvPath: string; readonly machine: string | undefined }
  | { readonly kind: 'build-log'; readonly drvName: string; readonly line: string }
  | { readonly kind: 'message'; readonly level: number; readonly text: string }
  | { readonly kind: 'activity'; readonly text: string }
  | { readonly kind: 'text'; readonly text: string };

export interface BuildRecord {
  readonly drvPath: string;
  /** the builder URI, or undefined when built on the machine that ran nix */
  readonly machine: string | undefined;
}

const ACT_BUILD = 105;
const RES_BUILD_LOG_LINE = 101;
const LEVEL_INFO = 3;

// Nix colours its messages even in JSON.
const ANSI = /\u001b\[[0-9;]*m/g;

export function drvName(drvPath: string): string {
  return drvPath.replace(/^.*\/[0-9a-z]{32}-/, '').replace(/\.drv$/, '');
}

export class BuildLogParser {
  readonly builds: BuildRecord[] = [];
  private readonly drvByActivity = new Map<number, string>();

  parse(line: string): BuildLogEvent | undefined {
    if (!line.startsWith('@nix ')) return { kind: 'text', text: line };
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(line.slice(5)) as Record<string, unknown>;
    } catch {
      return { kind: 'text', text: line };
    }
    const fields = Array.isArray(event.fields) ? (event.fields as unknown[]) : [];
    if (event.action === 'start' && event.type === ACT_BUILD && typeof fields[0] === 'string') {
      const drvPath = fields[0];
      const machine = typeof fields[1] === 'string' && fields[1] !== '' ? fields[1] : undefined;
      this.drvByActivity.set(Number(event.id), drvPath);
      this.builds.push({ drvPath, machine });
      return { kind: 'build-start', drvPath, machine };
    }
    if (event.action === 'result' && event.type === RES_BUILD_LOG_LINE && typeof fields[0] === 'string') {
      const drvPath = this.drvByActivity.get(Number(event.id));
      return { kind: 'build-log', drvName: drvPath ? drvName(drvPath) : '?', line: fields[0].replace(ANSI, '') };
    }
    if (event.action === 'msg' && typeof event.msg === 'string') {
      return { kind: 'message', level: Number(event.level ?? 0), text: event.msg.replace(ANSI, '') };
    }
    if (event.action === 'start' && typeof event.text === 'string' && event.text !== '' && Number(event.level) <= LEVEL_INFO) {
      return { kind: 'activity', text: event.text.replace(ANSI, '') };
    }
    return undefined;
  }
}

/** What `nix build --json` prints on stdout: one entry per installable, in order. */
export function parseBuildResults(stdout: string): { drvPath: string; outputs: Record<string, string> }[] {
  const parsed: unknown = JSON.parse(stdout);
  if (!Array.isArray(parsed)) throw new Error('nix build --json did not print a list');
  return parsed as { drvPath: string; outputs: Record<string, string> }[];
}
