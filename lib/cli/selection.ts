/**
 * `--on` and `--exclude`, the same on every command (lib/inventory/select.ts
 * resolves them against the inventory).
 */
import type { HostSelector } from '../inventory/select.ts';

/** parseStrict options: both repeatable. */
export const SELECTION_OPTIONS = {
  on: { type: 'string' as const, multiple: true as const, default: [] as string[] },
  exclude: { type: 'string' as const, multiple: true as const, default: [] as string[] },
};

/** The help lines for {@link SELECTION_OPTIONS}. */
export const SELECTION_HELP = `  --on <selector>      hosts to act on: names, @tag, globs (opi0*), comma lists;
                       repeatable (their union)
  --exclude <selector> hosts to leave out (same syntax; repeatable)`;

/**
 * The selector the operator gave: `--on` values plus `extra` (a command's
 * positional host names or @tags, a shorthand for --on) and `--exclude`.
 */
export function selectorFrom(values: { readonly on?: readonly string[] | undefined; readonly exclude?: readonly string[] | undefined }, extra: readonly string[] = []): HostSelector {
  return { on: [...extra, ...(values.on ?? [])], exclude: [...(values.exclude ?? [])] };
}
