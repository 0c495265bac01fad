/**
 * Values a plan cannot know before the run, written into its commands as
 * `{{name}}` or `{{name:host}}`, and filled by execution just before a
 * command runs. Only the names below are placeholders; any other `{{…}}`
 * (in a user's health command, say) is left alone.
 *
 * A placeholder in a remote command sits inside a single-quoted word of the
 * string ssh hands to the login shell (lib/remote/host.ts quotes every word
 * holding `{`), so a value is refused if it could end that quoting (`'`) or
 * the line: what is filled in can never become shell syntax.
 */
import { storePathHash } from '../cache/narinfo.ts';
import type { PlannedCommand } from './types.ts';

export const PLACEHOLDER = {
  /** this run's id: names its watchdog canary on the targets */
  runId: '{{run-id}}',
  /** this run's private directory of ssh control sockets */
  sshControlDir: '{{ssh-control-dir}}',
  /** the profile link the host had (system-5-link), empty for a first deploy */
  previousProfileLink: '{{previous-profile-link}}',
  /** the store path the host was running */
  previousSystem: '{{previous-system}}',
  /** this run's lock holder record (JSON) and its id */
  lockHolder: '{{lock-holder}}',
  lockHolderId: '{{lock-holder-id}}',
  /** the evaluated toplevel of a host (its store path), and that path's base name */
  toplevel: (host: string) => `{{toplevel:${host}}}`,
  toplevelName: (host: string) => `{{toplevel-name:${host}}}`,
  /** the hash part of a host's toplevel, which names its narinfo */
  toplevelHash: (host: string) => `{{toplevel-hash:${host}}}`,
  /** the derivation (`.drv` store path) the evaluate stage instantiated for a host's toplevel: what the seed build builds */
  toplevelDrv: (host: string) => `{{toplevel-drv:${host}}}`,
  /** the --builders entries of a system's builders that answered in preflight, the seed first */
  builders: (system: string) => `{{builders:${system}}}`,
  /** the --builders entry of a system's seed alone: the preferred seed as soon as it answered, else the first builder that did */
  seedBuilder: (system: string) => `{{seed-builder:${system}}}`,
  /** a rollback's chosen system generation number on a host (its toplevel is `{{toplevel:<host>}}`) */
  generation: (host: string) => `{{generation:${host}}}`,
} as const;

const KNOWN = /\{\{(run-id|ssh-control-dir|previous-profile-link|previous-system|lock-holder|lock-holder-id|toplevel:[^{}]+|toplevel-name:[^{}]+|toplevel-hash:[^{}]+|toplevel-drv:[^{}]+|generation:[^{}]+|builders:[^{}]+|seed-builder:[^{}]+)\}\}/g;
const UNSAFE = /['\n\r\0]/;

/** What the run knows, by placeholder name (`run-id`, `toplevel:opi01`, …). */
export type PlaceholderValues = Readonly<Record<string, string>>;

/** The run-time values for a host's toplevel placeholders. */
export function toplevelValues(toplevels: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(toplevels).flatMap(([host, storePath]) => [
      [`toplevel:${host}`, storePath],
      [`toplevel-name:${host}`, storePath.slice(storePath.lastIndexOf('/') + 1)],
      [`toplevel-hash:${host}`, storePathHash(storePath)],
    ]),
  );
}

/** The run-time values for hosts' `{{toplevel-drv:…}}`: each toplevel's derivation path, by host. */
export function toplevelDerivationValues(drvPaths: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(drvPaths).map(([host, drvPath]) => [`toplevel-drv:${host}`, drvPath]));
}

/** The values for a host's `{{previous-…}}` placeholders, from what its probe read. */
export function previousGenerationValues(generation: { readonly profileLink: string; readonly currentSystem: string }): Record<string, string> {
  return { 'previous-profile-link': generation.profileLink, 'previous-system': generation.currentSystem };
}

/** The toplevel store path the run knows for `host`, if evaluated yet. */
export function toplevelOf(values: PlaceholderValues, host: string): string | undefined {
  return values[`toplevel:${host}`];
}

/**
 * `text` with every known placeholder replaced by its value. Throws (a bug,
 * not an operator error) when a value is missing or could break the quoting
 * of a remote command.
 */
export function fillText(text: string, values: PlaceholderValues): string {
  return text.replace(KNOWN, (token: string, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`placeholder ${token} has no value at run time`);
    if (UNSAFE.test(value)) throw new Error(`refusing to put ${JSON.stringify(value)} into a command for ${token}: it holds a quote or a line break`);
    return value;
  });
}

/** The command as it runs: placeholders in argv and env filled (see {@link fillText}). */
export function fillCommand(command: PlannedCommand, values: PlaceholderValues): PlannedCommand {
  return {
    ...command,
    argv: command.argv.map((word) => fillText(word, values)),
    ...(command.env ? { env: Object.fromEntries(Object.entries(command.env).map(([k, v]) => [k, fillText(v, values)])) } : {}),
  };
}
