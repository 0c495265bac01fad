#!/usr/bin/env -S npx tsx
// Switch hosts back to their previous (or --to N) generation, or revert a whole run (--run <id>),
// with the deploy's own safety steps. `--help` for options.
import { runInOwnProcess } from '../lib/cli/own-process.ts';

// In a process of its own: a wrapper's impatience with signals must not kill a rollback (lib/cli/own-process.ts).
// Imported there only: the launcher stays small.
process.exitCode = await runInOwnProcess(async () => (await import('../lib/cli/deploy.ts')).runDeployCli('rollback', process.argv.slice(2)));
