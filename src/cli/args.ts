import { type ParseArgsConfig, parseArgs } from 'node:util';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** Parses a command's arguments (plus `-h/--help`); an unknown flag exits with a message naming it. */
export function parse(args: string[], options: Options): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Parsed['values'], positionals };
  } catch (err) {
    return fail((err as Error).message);
  }
}

/** A string flag's value. */
export function str(value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Reads an integer flag, or exits with a message naming it. */
export function intFlag(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer, got "${String(value)}"`);
  return n;
}

export function fail(message: string): never {
  process.stderr.write(`agentd: ${message}\n`);
  process.exit(2);
}

const useColor = process.stderr.isTTY === true && process.env.NO_COLOR === undefined;
export const dim = (text: string): string => (useColor ? `\x1b[2m${text}\x1b[22m` : text);
export const bold = (text: string): string => (useColor ? `\x1b[1m${text}\x1b[22m` : text);
export const red = (text: string): string => (useColor ? `\x1b[31m${text}\x1b[39m` : text);
export const green = (text: string): string => (useColor ? `\x1b[32m${text}\x1b[39m` : text);
