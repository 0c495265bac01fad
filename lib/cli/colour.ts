/**
 * The one place that decides whether output is coloured, from the
 * environment and whether the output is a terminal. Everything that colours
 * text takes its chalk instance from here, never chalk's default export: chalk
 * 5 reads FORCE_COLOR (and --color flags) itself but not NO_COLOR, and decides
 * once per process from process.stdout, not from the Io a command was given.
 */
import { Chalk, type ChalkInstance } from 'chalk';

export type ColourLevel = 0 | 1 | 2 | 3;

/**
 * 0 (none), 1 (16 colours), 2 (256) or 3 (truecolor).
 *
 * - `NO_COLOR`, when set and not empty (no-color.org) → 0, whatever else is
 *   set.
 * - else `FORCE_COLOR`, when set and not empty (force-color.org): `0`/`false`
 *   → 0, `2`/`3` → that level, any other value → 1, terminal or not.
 * - else not a terminal, or `TERM=dumb` → 0.
 * - else `COLORTERM=truecolor|24bit` → 3, a `TERM` with 256 in it → 2, else 1.
 *
 * The deploy's task list follows this decision too: the CLI hands
 * {@link colours} to the run, which gives listr2 its palette and logger in
 * that chalk (lib/run/renderer.ts). Left alone, listr2 would colour through
 * colorette, which decides once, when it is imported, from process.env and
 * file descriptor 1 alone, and counts NO_COLOR or FORCE_COLOR merely present
 * (even empty, even FORCE_COLOR=0).
 */
export function colourLevel(env: NodeJS.ProcessEnv, isTTY: boolean): ColourLevel {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') {
    if (force === '0' || force === 'false') return 0;
    if (force === '2' || force === '3') return Number(force) as ColourLevel;
    return 1;
  }
  if (!isTTY || env.TERM === 'dumb') return 0;
  if (env.COLORTERM === 'truecolor' || env.COLORTERM === '24bit') return 3;
  return /256/.test(env.TERM ?? '') ? 2 : 1;
}

const instances = new Map<ColourLevel, ChalkInstance>();

/**
 * A chalk instance with the level {@link colourLevel} decides for this
 * output (`isTTY`: whether stdout is a terminal). At level 0 every style is
 * the identity: no escape sequence at all.
 */
export function colours(output: { readonly env: NodeJS.ProcessEnv; readonly isTTY: boolean }): ChalkInstance {
  const level = colourLevel(output.env, output.isTTY);
  let instance = instances.get(level);
  if (!instance) {
    instance = new Chalk({ level });
    instances.set(level, instance);
  }
  return instance;
}
