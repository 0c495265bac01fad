#!/usr/bin/env -S npx tsx
// Deploy every host of the inventory (or those --on selects) in stages. `--help` for options.
import { runInOwnProcess } from '../lib/cli/own-process.ts';

// In a process of its own: a wrapper's impatience with signals must not kill a deploy (lib/cli/own-process.ts).
// Imported there only: the launcher stays small.
process.exitCode = await runInOwnProcess(async () => (await import('../lib/cli/deploy.ts')).runDeployCli('deploy-all', process.argv.slice(2)));
