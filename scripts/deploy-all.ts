#!/usr/bin/env -S npx tsx
// Deploy every host of the inventory (or those with --tag) in stages. `--help` for options.
import { runDeployCli } from '../lib/cli/deploy.ts';

process.exitCode = await runDeployCli('deploy-all', process.argv.slice(2));
