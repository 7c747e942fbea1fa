import { InvalidRequestError } from '../errors.js';
import type { FieldCondition, MemoryFilter, MetadataFilter } from './types.js';

/**
 * The Postgres twin of `compileFilter` (filter.ts): the same filters, the same validation and the
 * same JSON-typed semantics (1 never equals "1" nor true; a missing field fails every comparison
 * but `ne`/`nin`/`exists: false`), over `jsonb` metadata and `text[]` tags. The contract suite
 * checks both against one brute-force scan.
 */

const OPERATORS = new Set(['eq', 'ne', 'in', 'nin', 'gt', 'gte', 'lt', 'lte', 'contains', 'exists']);
const FIELD = /^[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*$/;
const DIGITS = /^\d+$/;
const MAX_DEPTH = 16;

/** Positional parameters (`$1`, `$2`, …) collected while compiling. */
export class SqlParams {
  readonly values: unknown[] = [];

  /** Adds a value; its placeholder. */
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

function invalid(message: string, field: string): never {
  throw new InvalidRequestError(message, { details: { field } });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The jsonb value at a dotted path, SQL NULL when absent. Segments are object keys only: `#>`
 * would index arrays with a numeric segment, so such paths go through a strict jsonpath whose
 * structural errors (a key on an array) read as absent, like SQLite's `$."a"."0"`.
 */
function valueAt(field: string, params: SqlParams): string {
  const parts = field.split('.');
  if (!parts.some((part) => DIGITS.test(part))) return `(m.metadata #> ${params.add(parts)}::text[])`;
  const path = `strict $${parts.map((part) => `."${part}"`).join('')}`;
  return `jsonb_path_query_first(m.metadata, ${params.add(path)}::jsonpath, '{}', true)`;
}

type Scalar = string | number | boolean | null;

function scalar(value: unknown, where: string): Scalar {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  return invalid(`${where} must be a string, a finite number, a boolean or null`, where);
}

/**
 * `value = ?` typed like JSON; never NULL, so NOT and OR behave as in a plain scan. CASE, not AND:
 * Postgres may evaluate AND's operands in any order, and casting a jsonb string to float8 throws.
 */
function equals(at: string, value: Scalar, params: SqlParams): string {
  if (value === null) return `(jsonb_typeof(${at}) IS NOT DISTINCT FROM 'null')`;
  if (typeof value === 'boolean') return `(${at} IS NOT DISTINCT FROM '${value}'::jsonb)`;
  if (typeof value === 'number')
    return `(CASE WHEN jsonb_typeof(${at}) = 'number' THEN (${at})::float8 = ${params.add(value)}::float8 ELSE false END)`;
  return `(CASE WHEN jsonb_typeof(${at}) = 'string' THEN (${at} #>> '{}') = ${params.add(value)}::text ELSE false END)`;
}

/** Numbers compare with numbers, strings with strings by code point (ISO dates work). */
function compare(at: string, op: string, value: unknown, where: string, params: SqlParams): string {
  const sqlOp = op === 'gt' ? '>' : op === 'gte' ? '>=' : op === 'lt' ? '<' : '<=';
  if (typeof value === 'number' && Number.isFinite(value))
    return `(CASE WHEN jsonb_typeof(${at}) = 'number' THEN (${at})::float8 ${sqlOp} ${params.add(value)}::float8 ELSE false END)`;
  if (typeof value === 'string')
    return `(CASE WHEN jsonb_typeof(${at}) = 'string' THEN (${at} #>> '{}') COLLATE "C" ${sqlOp} ${params.add(value)}::text COLLATE "C" ELSE false END)`;
  return invalid(`${where} must be a number or a string`, where);
}

/** A string field contains a substring; an array field contains an element equal to the value. */
function contains(field: string, value: Scalar, params: SqlParams): string {
  const at = valueAt(field, params);
  const element = equals('j.value', value, params);
  const substring =
    typeof value === 'string' ? `strpos(${at} #>> '{}', ${params.add(value)}::text) > 0` : 'false';
  const array = `EXISTS (SELECT 1 FROM jsonb_array_elements(${valueAt(field, params)}) AS j WHERE ${element})`;
  return `(CASE jsonb_typeof(${at}) WHEN 'string' THEN ${substring} WHEN 'array' THEN ${array} ELSE false END)`;
}

function condition(field: string, spec: unknown, params: SqlParams): string {
  const where = `filter.metadata.${field}`;
  if (!FIELD.test(field)) invalid(`metadata field "${field}" must be dot-separated names`, where);
  if (!isPlainObject(spec)) return equals(valueAt(field, params), scalar(spec, where), params);
  const keys = Object.keys(spec);
  if (keys.length === 0) invalid(`${where} needs an operator`, where);
  const parts: string[] = [];
  const c = spec as FieldCondition & Record<string, unknown>;
  for (const op of keys) {
    if (!OPERATORS.has(op))
      invalid(`unknown operator "${op}" (use ${[...OPERATORS].join(', ')})`, `${where}.${op}`);
    const value = c[op];
    const at = `${where}.${op}`;
    switch (op) {
      case 'eq':
        parts.push(equals(valueAt(field, params), scalar(value, at), params));
        break;
      case 'ne':
        parts.push(`(NOT ${equals(valueAt(field, params), scalar(value, at), params)})`);
        break;
      case 'in':
      case 'nin': {
        if (!Array.isArray(value) || value.length === 0) invalid(`${at} must be a non-empty array`, at);
        const path = valueAt(field, params);
        const any = value.map((v, i) => equals(path, scalar(v, `${at}[${i}]`), params)).join(' OR ');
        parts.push(op === 'in' ? `(${any})` : `(NOT (${any}))`);
        break;
      }
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte':
        parts.push(compare(valueAt(field, params), op, value, at, params));
        break;
      case 'contains':
        parts.push(contains(field, scalar(value, at), params));
        break;
      case 'exists':
        if (typeof value !== 'boolean') invalid(`${at} must be true or false`, at);
        parts.push(`(${valueAt(field, params)} IS ${value ? 'NOT ' : ''}NULL)`);
        break;
    }
  }
  return parts.length === 1 ? parts[0]! : `(${parts.join(' AND ')})`;
}

function metadataCondition(filter: MetadataFilter, params: SqlParams, depth: number, where: string): string {
  if (depth > MAX_DEPTH) invalid(`${where} nests deeper than ${MAX_DEPTH} levels`, where);
  if (!isPlainObject(filter)) invalid(`${where} must be an object`, where);
  const parts: string[] = [];
  for (const [key, value] of Object.entries(filter)) {
    if (key === 'and' || key === 'or') {
      if (!Array.isArray(value) || value.length === 0)
        invalid(`${where}.${key} must be a non-empty array`, `${where}.${key}`);
      const inner = value.map((f, i) =>
        metadataCondition(f as MetadataFilter, params, depth + 1, `${where}.${key}[${i}]`),
      );
      parts.push(`(${inner.join(key === 'and' ? ' AND ' : ' OR ')})`);
    } else if (key === 'not') {
      parts.push(`(NOT ${metadataCondition(value as MetadataFilter, params, depth + 1, `${where}.not`)})`);
    } else {
      parts.push(condition(key, value, params));
    }
  }
  return parts.length === 0 ? 'true' : parts.length === 1 ? parts[0]! : `(${parts.join(' AND ')})`;
}

function stringList(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))
    invalid(`${field} must be an array of strings`, field);
  return value as string[];
}

function instant(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) invalid(`${field} must be a time`, field);
  return value;
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
  const parts = [
    `m.tenant_id = ${params.add(tenantId)}`,
    `(m.expires_at IS NULL OR m.expires_at > ${params.add(now)})`,
  ];
  if (filter === undefined) return parts.join(' AND ');
  if (!isPlainObject(filter)) invalid('filter must be an object', 'filter');
  for (const key of ['user_id', 'agent_id', 'session_id'] as const) {
    const value = filter[key];
    if (value === undefined) continue;
    if (typeof value !== 'string') invalid(`filter.${key} must be a string`, `filter.${key}`);
    parts.push(`m.${key} = ${params.add(value)}`);
  }
  if (filter.tags !== undefined) {
    const tags = stringList(filter.tags, 'filter.tags');
    if (tags.length > 0) parts.push(`m.tags @> ${params.add(tags)}::text[]`);
  }
  if (filter.tags_any !== undefined) {
    const tags = stringList(filter.tags_any, 'filter.tags_any');
    if (tags.length === 0) invalid('filter.tags_any must not be empty', 'filter.tags_any');
    parts.push(`m.tags && ${params.add(tags)}::text[]`);
  }
  const ranges = [
    ['created_after', 'm.created_at >='],
    ['created_before', 'm.created_at <'],
    ['updated_after', 'm.updated_at >='],
    ['updated_before', 'm.updated_at <'],
  ] as const;
  for (const [key, sql] of ranges) {
    const value = filter[key];
    if (value === undefined) continue;
    parts.push(`${sql} ${params.add(instant(value, `filter.${key}`))}::float8`);
  }
  if (filter.metadata !== undefined)
    parts.push(metadataCondition(filter.metadata as MetadataFilter, params, 0, 'filter.metadata'));
  return parts.join(' AND ');
}
