#!/usr/bin/env -S npx tsx
// List each host's NixOS system generations (running, booted, boot default) over SSH. `--help` for options.
import { runInOwnProcess } from '../lib/cli/own-process.ts';

// In a process of its own, as the deploy (lib/cli/own-process.ts); imported there only.
process.exitCode = await runInOwnProcess(async () => (await import('../lib/cli/generations.ts')).runGenerationsCli(process.argv.slice(2)));
