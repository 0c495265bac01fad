#!/usr/bin/env -S npx tsx
// Check the fleet as the fleet document's Verification and Troubleshooting do by hand. `--help` for options.
import { runDoctorCli } from '../lib/cli/doctor.ts';

process.exitCode = await runDoctorCli(process.argv.slice(2));
