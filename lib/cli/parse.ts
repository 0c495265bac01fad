/** Strict argument parsing shared by every entry point: an unknown flag is a usage error (exit 2). */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UsageError } from '../errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseStrict<T extends Options>(argv: readonly string[], options: T, allowPositionals = true) {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals });
  } catch (error) {
    // Node's hint about "--" does not help someone who mistyped a flag.
    throw new UsageError((error as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
}
