#!/usr/bin/env -S npx tsx
// Deploy the named hosts in stages. `--help` for options.
import { runCli } from '../lib/cli/main.ts';

process.exitCode = await runCli('deploy', process.argv.slice(2));
