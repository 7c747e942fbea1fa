import { compileMemoryFilter, type FilterDialect, type Ordering, type Scalar } from './filter-compiler.js';
import type { MemoryFilter } from './types.js';

/** A SQL condition over the `memories` row aliased `m`, with its positional parameters. */
export interface SqlCondition {
  sql: string;
  params: unknown[];
}

/**
 * SQLite: JSON metadata read with `json_type`/`json_extract` at a path whose every segment is
 * quoted (`$."a"."b"`), so no key can change the path's meaning; tags are a JSON array. A field
 * is its path, added as a parameter at each use because `?` placeholders are positional.
 */
class SqliteFilterDialect implements FilterDialect<string> {
  readonly always = '1';
  readonly params: unknown[] = [];

  param(value: unknown): string {
    this.params.push(value);
    return '?';
  }

  time(value: number): string {
    return this.param(value);
  }

  field(names: readonly string[]): string {
    return `$${names.map((name) => `."${name}"`).join('')}`;
  }

  equals(path: string, value: Scalar): string {
    if (value === null) return `(json_type(m.metadata, ${this.param(path)}) IS 'null')`;
    if (typeof value === 'boolean') return `(json_type(m.metadata, ${this.param(path)}) IS '${value}')`;
    return this.typed(path, value, '=');
  }

  compare(path: string, op: Ordering, value: number | string): string {
    return this.typed(path, value, op);
  }

  contains(path: string, value: Scalar): string {
    let sql = `(CASE json_type(m.metadata, ${this.param(path)}) WHEN 'text' THEN `;
    sql +=
      typeof value === 'string'
        ? `instr(json_extract(m.metadata, ${this.param(path)}), ${this.param(value)}) > 0`
        : '0';
    sql += ` WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(m.metadata, ${this.param(path)}) AS j WHERE `;
    if (value === null) sql += `j.type = 'null'`;
    else if (typeof value === 'boolean') sql += `j.type = '${value}'`;
    else if (typeof value === 'number')
      sql += `j.type IN ('integer', 'real') AND j.value = ${this.param(value)}`;
    else sql += `j.type = 'text' AND j.value = ${this.param(value)}`;
    return `${sql}) ELSE 0 END)`;
  }

  exists(path: string, present: boolean): string {
    return `(json_type(m.metadata, ${this.param(path)}) IS ${present ? 'NOT ' : ''}NULL)`;
  }

  allTags(tags: string[]): string {
    return tags
      .map((tag) => `EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value = ${this.param(tag)})`)
      .join(' AND ');
  }

  anyTag(tags: string[]): string {
    return `EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value IN (${tags.map((tag) => this.param(tag)).join(', ')}))`;
  }

  /** A number compares only with a number, a string only with a string; 0 otherwise, never NULL. */
  private typed(path: string, value: number | string, op: string): string {
    const types = typeof value === 'number' ? `IN ('integer', 'real')` : `= 'text'`;
    return `(COALESCE(json_type(m.metadata, ${this.param(path)}) ${types} AND json_extract(m.metadata, ${this.param(path)}) ${op} ${this.param(value)}, 0))`;
  }
}

/**
 * Compiles a filter into one SQLite condition on `m` (the `memories` table): tenant, scope,
 * expiry, tags, time ranges and metadata. Bad filters throw a 400 naming the field.
 */
export function compileFilter(tenantId: string, filter: MemoryFilter | undefined, now: number): SqlCondition {
  const dialect = new SqliteFilterDialect();
  const sql = compileMemoryFilter(dialect, tenantId, filter, now);
  return { sql, params: dialect.params };
}
