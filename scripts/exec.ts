#!/usr/bin/env -S npx tsx
// Run one command on the selected hosts, in parallel: exec --on @k3s -- systemctl status k3s. `--help` for options.
import { runInOwnProcess } from '../lib/cli/own-process.ts';

// In a process of its own, as the deploy (lib/cli/own-process.ts); imported there only.
process.exitCode = await runInOwnProcess(async () => (await import('../lib/cli/exec.ts')).runExecCli(process.argv.slice(2)));
