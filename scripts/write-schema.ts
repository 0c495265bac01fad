#!/usr/bin/env -S npx tsx
// Writes inventory.schema.json (for editors) from the zod schema, or with --check fails when it is stale.
import { readFile, writeFile } from 'node:fs/promises';
import { inventoryJsonSchema } from '../lib/inventory/schema.ts';

const path = new URL('../inventory.schema.json', import.meta.url);
const text = `${JSON.stringify(inventoryJsonSchema(), null, 2)}\n`;
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log('Usage: npx tsx scripts/write-schema.ts [--check]\nWrites inventory.schema.json from lib/inventory/schema.ts; --check exits 1 if it is out of date.');
} else if (process.argv.includes('--check')) {
  const current = await readFile(path, 'utf8').catch(() => '');
  if (current !== text) {
    console.error('inventory.schema.json is out of date: run npm run schema');
    process.exitCode = 1;
  }
} else {
  await writeFile(path, text);
  console.log(`wrote ${path.pathname}`);
}
