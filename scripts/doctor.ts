#!/usr/bin/env -S npx tsx
// Check the fleet as an operator would by hand: cache, key, builders, targets, GC roots. `--help` for options.
import { runInOwnProcess } from '../lib/cli/own-process.ts';

// In a process of its own, as the deploy (lib/cli/own-process.ts); imported there only.
process.exitCode = await runInOwnProcess(async () => (await import('../lib/cli/doctor.ts')).runDoctorCli(process.argv.slice(2)));
