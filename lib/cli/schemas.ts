/**
 * Every JSON Schema the project publishes, each generated from the zod
 * schema the code itself validates with (scripts/write-schema.ts writes
 * them; CI checks they are current).
 */
import { z } from 'zod';
import { inventoryJsonSchema } from '../inventory/schema.ts';
import { dryRunOutputSchema } from '../plan/types.ts';

export const JSON_SCHEMAS: readonly { readonly path: string; readonly schema: () => unknown }[] = [
  { path: 'inventory.schema.json', schema: inventoryJsonSchema },
  { path: 'schemas/dry-run.schema.json', schema: () => z.toJSONSchema(dryRunOutputSchema, { io: 'output' }) },
];
