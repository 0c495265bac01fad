#!/usr/bin/env -S npx tsx
// Writes the JSON Schemas generated from the zod schemas (for editors and for readers of --json), or with --check fails when one is stale.
import { readFile, writeFile } from 'node:fs/promises';
import { JSON_SCHEMAS } from '../lib/cli/schemas.ts';

const root = new URL('../', import.meta.url);
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(`Usage: npx tsx scripts/write-schema.ts [--check]
Writes ${JSON_SCHEMAS.map((s) => s.path).join(', ')} from their zod schemas; --check exits 1 if one is out of date.`);
} else {
  for (const { path, schema } of JSON_SCHEMAS) {
    const file = new URL(path, root);
    const text = `${JSON.stringify(schema(), null, 2)}\n`;
    if (!process.argv.includes('--check')) {
      await writeFile(file, text);
      console.log(`wrote ${path}`);
    } else if ((await readFile(file, 'utf8').catch(() => '')) !== text) {
      console.error(`${path} is out of date: run npm run schema`);
      process.exitCode = 1;
    }
  }
}
