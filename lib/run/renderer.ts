/**
 * How the run's task list is drawn: listr2's renderer options. The colours
 * are the ones the command decided (lib/cli/colour.ts: NO_COLOR,
 * FORCE_COLOR, TERM, a terminal) and hands over as a chalk instance: listr2
 * would otherwise colour through colorette, which decides by itself, once,
 * from process.env and file descriptor 1.
 */
import type { ChalkInstance } from 'chalk';
import {
  LISTR_LOGGER_STDERR_LEVELS,
  ListrDefaultRendererLogLevels as Row,
  ListrLogger,
  type ListrLoggerOptions,
  ListrLogLevels as Line,
  type LoggerFieldOptions,
  type LoggerFormat,
  type LoggerFormatOptions,
  PRESET_TIMESTAMP,
} from 'listr2';

/** default: the live task list on a terminal; simple: a line per event (CI logs); silent: nothing (--json). */
export type RendererChoice = 'default' | 'simple' | 'silent';

/**
 * listr2's logger, with the run's colours. Every colour listr2 draws goes
 * through a logger: the icons through its `color` map (given as listr2's
 * own palette, in our chalk), and the fields around a line (the
 * timestamp, the plain renderer's `[FAILED: …]`, `[SKIPPED: …]`) through
 * applyFormat, which leaves them plain when the run has no colour.
 *
 * Untitled tasks are the stages' structure (lib/stages/subtasks.ts), not
 * rows: the plain renderer logs nothing for them (it would print their
 * failure as `✖ [FAILED: …]`, with no title, again).
 */
class RunLogger extends ListrLogger<string> {
  constructor(
    private readonly chalk: ChalkInstance,
    options: ListrLoggerOptions<string>,
  ) {
    super(options);
  }

  override log(level: string, message: string | any[], options?: LoggerFieldOptions): void {
    if (message === undefined) return;
    super.log(level, message, options);
  }

  protected override applyFormat(message: string, options?: LoggerFormatOptions): string {
    return this.chalk.level === 0 ? message : super.applyFormat(message, options);
  }
}

/** listr2's palette (LISTR_DEFAULT_RENDERER_STYLE, LISTR_LOGGER_STYLE), painted by `chalk`. */
function palette(chalk: ChalkInstance) {
  const paint = (style: (text: string) => string): LoggerFormat => (text) => style(text ?? '');
  const { yellow, green, red, dim, yellowBright, redBright } = {
    yellow: paint(chalk.yellow),
    green: paint(chalk.green),
    red: paint(chalk.red),
    dim: paint(chalk.dim),
    yellowBright: paint(chalk.yellowBright),
    redBright: paint(chalk.redBright),
  };
  return {
    rows: {
      [Row.SKIPPED_WITH_COLLAPSE]: yellow,
      [Row.SKIPPED_WITHOUT_COLLAPSE]: yellow,
      [Row.PENDING]: yellow,
      [Row.COMPLETED]: green,
      [Row.COMPLETED_WITH_FAILED_SUBTASKS]: yellow,
      [Row.COMPLETED_WITH_FAILED_SISTER_TASKS]: red,
      [Row.RETRY]: yellowBright,
      [Row.ROLLING_BACK]: redBright,
      [Row.ROLLED_BACK]: redBright,
      [Row.FAILED]: red,
      [Row.FAILED_WITH_FAILED_SUBTASKS]: red,
      [Row.WAITING]: dim,
      [Row.PAUSED]: yellowBright,
    },
    lines: {
      [Line.STARTED]: yellow,
      [Line.FAILED]: red,
      [Line.SKIPPED]: yellow,
      [Line.COMPLETED]: green,
      [Line.RETRY]: yellowBright,
      [Line.ROLLBACK]: redBright,
      [Line.PAUSED]: yellowBright,
    },
    dim,
  };
}

/**
 * listr2's options for the root task list: `rendererOptions` for the chosen
 * renderer, and `fallbackRendererOptions` for the plain one listr2 falls
 * back to when stdout is no terminal.
 */
export function listrRendererOptions(renderer: RendererChoice, chalk: ChalkInstance) {
  const colours = palette(chalk);
  const live = {
    // The final screen is the whole run: every stage keeps its rows once it ends.
    collapseSubtasks: false,
    // A failed row keeps its title (and elapsed time); its error is shown under it.
    collapseErrors: false,
    showErrorMessage: true,
    color: colours.rows,
    logger: new RunLogger(chalk, { useIcons: true, toStderr: [] }),
  };
  const plain = {
    // Timestamps: CI logs are read after the fact.
    timestamp: { ...PRESET_TIMESTAMP, format: () => colours.dim },
    color: colours.lines,
    logger: new RunLogger(chalk, { useIcons: true, toStderr: LISTR_LOGGER_STDERR_LEVELS }),
  };
  return { rendererOptions: renderer === 'default' ? live : renderer === 'simple' ? plain : {}, fallbackRendererOptions: plain };
}
