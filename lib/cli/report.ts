/**
 * scripts/report.ts: shows a stored run (text, markdown or HTML) or the
 * history of recent runs. Nothing here throws past runReportCli.
 */
import { writeFile } from 'node:fs/promises';
import { ExitCode, UsageError } from '../errors.ts';
import { type Comparison, comparisonWithRun, recentMedians } from '../report/compare.ts';
import { historyPathFor, readHistory, summarizeRun } from '../report/history.ts';
import { loadRun, ReportNotFoundError } from '../report/load.ts';
import { renderHistory } from '../report/render/history.ts';
import { renderHtml } from '../report/render/html.ts';
import { renderMarkdown } from '../report/render/markdown.ts';
import { describeRun, renderReport } from '../report/render/text.ts';
import { colours } from './colour.ts';
import { failure, type Io, processIo } from './io.ts';
import { parseStrict } from './parse.ts';

export const REPORT_USAGE = `Show a stored deploy run: the table, the timeline and the verdict against the
baseline and the median of recent runs.

Usage: npx tsx scripts/report.ts [<run-id>|--last|--history] [options]   (npm run report -- …)

  <run-id>             a run id or a unique prefix of one (default: the latest run)
  --last               the latest run
  --history            the recent runs, one line each, from history.jsonl
  --markdown           GitHub-flavoured markdown (table and verdict), e.g. >> "$GITHUB_STEP_SUMMARY"
  --html <file>        write one self-contained HTML page with the timeline as a chart
  --compare <run-id>   compare with that run instead of the median of recent runs
  --report-dir <dir>   where run reports are (default .deploy/runs; the history is
                       <dir>/../history.jsonl)
  -h, --help           this help

Exit codes: 0 shown, 1 the HTML file could not be written, 2 bad arguments, unknown run or
empty history.`;

interface ReportArgs {
  readonly runId?: string | undefined;
  readonly history: boolean;
  readonly markdown: boolean;
  readonly html?: string | undefined;
  readonly compare?: string | undefined;
  readonly reportDir: string;
  readonly help: boolean;
}

/** The options of scripts/report.ts; throws UsageError for unknown flags and combinations that do not go together. */
export function parseReportArgs(argv: readonly string[]): ReportArgs {
  const { values, positionals } = parseStrict(argv, {
    last: { type: 'boolean', default: false },
    history: { type: 'boolean', default: false },
    markdown: { type: 'boolean', default: false },
    html: { type: 'string' },
    compare: { type: 'string' },
    'report-dir': { type: 'string', default: '.deploy/runs' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (positionals.length > 1) throw new UsageError(`one run id at most (got ${positionals.join(' ')})`);
  const runId = positionals[0];
  const chosen = [runId !== undefined && `run id '${runId}'`, values.last && '--last', values.history && '--history'].filter(Boolean);
  if (chosen.length > 1) throw new UsageError(`choose one of a run id, --last or --history (got ${chosen.join(', ')})`);
  if (values.history && values.html !== undefined) throw new UsageError('--html shows one run; it does not go with --history');
  if (values.history && values.compare !== undefined) throw new UsageError('--compare compares one run; it does not go with --history');
  if (values.html === '') throw new UsageError('--html needs a file name');
  return {
    runId,
    history: values.history ?? false,
    markdown: values.markdown ?? false,
    html: values.html,
    compare: values.compare,
    reportDir: values['report-dir'] ?? '.deploy/runs',
    help: values.help ?? false,
  };
}

/**
 * Shows what `argv` asks for on `io`. Returns the exit code: 0 shown, 1 the
 * HTML file could not be written, 2 bad arguments or a run (or history) that
 * cannot be found or read; never throws.
 */
export async function runReportCli(argv: readonly string[], io: Io = processIo): Promise<number> {
  const chalk = colours(io);
  try {
    const args = parseReportArgs(argv);
    if (args.help) {
      io.stdout(REPORT_USAGE);
      return ExitCode.ok;
    }
    const historyPath = historyPathFor(args.reportDir);
    const history = await readHistory(historyPath, (warning) => io.stderr(chalk.yellow(`warning: ${warning}`)));
    if (args.history) {
      if (history.length === 0) throw new ReportNotFoundError(`no runs in ${historyPath} yet (a deploy adds one line per run)`);
      io.stdout(renderHistory(history, args.markdown));
      return ExitCode.ok;
    }

    const report = await loadRun(args.reportDir, args.runId);
    const comparison: Comparison | undefined = args.compare
      ? comparisonWithRun(summarizeRun(await loadRun(args.reportDir, args.compare)))
      : recentMedians(history, { hosts: report.hosts.map((h) => h.name), goal: report.goal }, report.startedAt);
    if (args.html !== undefined) {
      try {
        await writeFile(args.html, renderHtml(report, comparison));
      } catch (error) {
        io.stderr(chalk.red(`error: cannot write ${args.html}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`));
        return ExitCode.stageFailed;
      }
    }
    if (args.markdown) io.stdout(renderMarkdown(report, comparison));
    else if (args.html !== undefined) io.stdout(`wrote ${args.html} (run ${report.id})`);
    else io.stdout(`${describeRun(report)}\n\n${renderReport(report, { comparison })}`);
    return ExitCode.ok;
  } catch (error) {
    // A run that cannot be found is the caller's to fix, like a bad argument (exit 2), but no usage hint helps.
    if (error instanceof ReportNotFoundError) {
      io.stderr(chalk.red(`error: ${error.message}`));
      return ExitCode.usage;
    }
    return failure(error, false, io);
  }
}
