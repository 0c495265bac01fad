#!/usr/bin/env -S npx tsx
// Deploy the named hosts in stages. `--help` for options.
import { runDeployCli } from '../lib/cli/deploy.ts';

process.exitCode = await runDeployCli('deploy', process.argv.slice(2));
