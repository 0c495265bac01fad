#!/usr/bin/env -S npx tsx
// Deploy every host of the inventory (or those with --tag) in stages. `--help` for options.
import { runCli } from '../lib/cli/main.ts';

process.exitCode = await runCli('deploy-all', process.argv.slice(2));
