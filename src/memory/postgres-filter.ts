import { compileMemoryFilter, type FilterDialect, type Ordering, type Scalar } from './filter-compiler.js';
import type { MemoryFilter } from './types.js';

const DIGITS = /^\d+$/;

/** Positional parameters (`$1`, `$2`, …) collected while compiling. */
export class SqlParams {
  readonly values: unknown[] = [];

  /** Adds a value; its placeholder. */
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/**
 * Postgres: `jsonb` metadata and `text[]` tags, with the same JSON-typed semantics as SQLite (a
 * missing field fails every comparison but `ne`/`nin`/`exists: false`); the contract suite checks
 * both against one brute-force scan. A field is a jsonb expression, SQL NULL when absent.
 * Comparisons use CASE, not AND: Postgres may evaluate AND's operands in any order, and casting a
 * jsonb string to float8 throws.
 */
class PostgresFilterDialect implements FilterDialect<string> {
  readonly always = 'true';

  constructor(private readonly params: SqlParams) {}

  param(value: unknown): string {
    return this.params.add(value);
  }

  time(value: number): string {
    return `${this.params.add(value)}::float8`;
  }

  /**
   * Segments are object keys only: `#>` would index arrays with a numeric segment, so such paths
   * go through a strict jsonpath whose structural errors (a key on an array) read as absent, like
   * SQLite's `$."a"."0"`.
   */
  field(names: readonly string[]): string {
    if (!names.some((name) => DIGITS.test(name))) return `(m.metadata #> ${this.params.add(names)}::text[])`;
    const path = `strict $${names.map((name) => `."${name}"`).join('')}`;
    return `jsonb_path_query_first(m.metadata, ${this.params.add(path)}::jsonpath, '{}', true)`;
  }

  equals(at: string, value: Scalar): string {
    if (value === null) return `(jsonb_typeof(${at}) IS NOT DISTINCT FROM 'null')`;
    if (typeof value === 'boolean') return `(${at} IS NOT DISTINCT FROM '${value}'::jsonb)`;
    return this.typed(at, value, '=');
  }

  compare(at: string, op: Ordering, value: number | string): string {
    return this.typed(at, value, op);
  }

  contains(at: string, value: Scalar): string {
    const substring =
      typeof value === 'string' ? `strpos(${at} #>> '{}', ${this.params.add(value)}::text) > 0` : 'false';
    const array = `EXISTS (SELECT 1 FROM jsonb_array_elements(${at}) AS j WHERE ${this.equals('j.value', value)})`;
    return `(CASE jsonb_typeof(${at}) WHEN 'string' THEN ${substring} WHEN 'array' THEN ${array} ELSE false END)`;
  }

  exists(at: string, present: boolean): string {
    return `(${at} IS ${present ? 'NOT ' : ''}NULL)`;
  }

  allTags(tags: string[]): string {
    return `m.tags @> ${this.params.add(tags)}::text[]`;
  }

  anyTag(tags: string[]): string {
    return `m.tags && ${this.params.add(tags)}::text[]`;
  }

  /** Strings compare by code point (`COLLATE "C"`), so ISO dates order as in SQLite. */
  private typed(at: string, value: number | string, op: string): string {
    if (typeof value === 'number')
      return `(CASE WHEN jsonb_typeof(${at}) = 'number' THEN (${at})::float8 ${op} ${this.params.add(value)}::float8 ELSE false END)`;
    const collate = op === '=' ? '' : ' COLLATE "C"';
    return `(CASE WHEN jsonb_typeof(${at}) = 'string' THEN (${at} #>> '{}')${collate} ${op} ${this.params.add(value)}::text${collate} ELSE false END)`;
  }
}

/**
 * Compiles a filter into one Postgres condition on `m` (the `memories` table): tenant, scope,
 * expiry, tags, time ranges and metadata, its values added to `params`. Bad filters throw a 400
 * naming the field.
 */
export function compilePostgresFilter(
  tenantId: string,
  filter: MemoryFilter | undefined,
  now: number,
  params: SqlParams,
): string {
  return compileMemoryFilter(new PostgresFilterDialect(params), tenantId, filter, now);
}
