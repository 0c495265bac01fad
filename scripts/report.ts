#!/usr/bin/env -S npx tsx
// Show a stored run report (text, --markdown, --html <file>) or --history. `--help` for options.
import { runReportCli } from '../lib/cli/report.ts';

process.exitCode = await runReportCli(process.argv.slice(2));
