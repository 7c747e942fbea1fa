import { InvalidRequestError } from '../errors.js';
import type { FieldCondition, MemoryFilter, MetadataFilter } from './types.js';

/** A SQL condition over the `memories` row aliased `m`, with its positional parameters. */
export interface SqlCondition {
  sql: string;
  params: unknown[];
}

const OPERATORS = new Set(['eq', 'ne', 'in', 'nin', 'gt', 'gte', 'lt', 'lte', 'contains', 'exists']);
const FIELD = /^[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*$/;
const MAX_DEPTH = 16;

function invalid(message: string, field: string): never {
  throw new InvalidRequestError(message, { details: { field } });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `$."a"."b"`: a JSON path with every segment quoted, so no key can change the path's meaning. */
function jsonPath(field: string): string {
  return `$${field
    .split('.')
    .map((part) => `."${part}"`)
    .join('')}`;
}

type Scalar = string | number | boolean | null;

function scalar(value: unknown, where: string): Scalar {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  return invalid(`${where} must be a string, a finite number, a boolean or null`, where);
}

/**
 * `value = ?` typed like JSON: 1 never equals "1" nor true. Always 0 or 1, never NULL, so NOT
 * and OR behave as in a plain scan.
 */
function equals(path: string, value: Scalar, params: unknown[]): string {
  if (value === null) {
    params.push(path);
    return `(json_type(m.metadata, ?) IS 'null')`;
  }
  if (typeof value === 'boolean') {
    params.push(path);
    return `(json_type(m.metadata, ?) IS '${value ? 'true' : 'false'}')`;
  }
  if (typeof value === 'number') {
    params.push(path, path, value);
    return `(COALESCE(json_type(m.metadata, ?) IN ('integer', 'real') AND json_extract(m.metadata, ?) = ?, 0))`;
  }
  params.push(path, path, value);
  return `(COALESCE(json_type(m.metadata, ?) = 'text' AND json_extract(m.metadata, ?) = ?, 0))`;
}

/** An ordering comparison: numbers compare with numbers, strings with strings (ISO dates work). */
function compare(path: string, op: string, value: unknown, where: string, params: unknown[]): string {
  const sqlOp = op === 'gt' ? '>' : op === 'gte' ? '>=' : op === 'lt' ? '<' : '<=';
  if (typeof value === 'number' && Number.isFinite(value)) {
    params.push(path, path, value);
    return `(COALESCE(json_type(m.metadata, ?) IN ('integer', 'real') AND json_extract(m.metadata, ?) ${sqlOp} ?, 0))`;
  }
  if (typeof value === 'string') {
    params.push(path, path, value);
    return `(COALESCE(json_type(m.metadata, ?) = 'text' AND json_extract(m.metadata, ?) ${sqlOp} ?, 0))`;
  }
  return invalid(`${where} must be a number or a string`, where);
}

function contains(path: string, value: Scalar, params: unknown[]): string {
  // A string field contains a substring; an array field contains an element equal to the value.
  const element =
    value === null
      ? `j.type = 'null'`
      : typeof value === 'boolean'
        ? `j.type = '${value ? 'true' : 'false'}'`
        : typeof value === 'number'
          ? `j.type IN ('integer', 'real') AND j.value = ?`
          : `j.type = 'text' AND j.value = ?`;
  const substring = typeof value === 'string' ? `instr(json_extract(m.metadata, ?), ?) > 0` : '0';
  params.push(path);
  if (typeof value === 'string') params.push(path, value);
  params.push(path);
  if (typeof value === 'number' || typeof value === 'string') params.push(value);
  return `(CASE json_type(m.metadata, ?) WHEN 'text' THEN ${substring} WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(m.metadata, ?) AS j WHERE ${element}) ELSE 0 END)`;
}

function condition(field: string, spec: unknown, params: unknown[]): string {
  const where = `filter.metadata.${field}`;
  if (!FIELD.test(field)) invalid(`metadata field "${field}" must be dot-separated names`, where);
  const path = jsonPath(field);
  if (!isPlainObject(spec)) return equals(path, scalar(spec, where), params);
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
        parts.push(equals(path, scalar(value, at), params));
        break;
      case 'ne':
        parts.push(`(NOT ${equals(path, scalar(value, at), params)})`);
        break;
      case 'in':
      case 'nin': {
        if (!Array.isArray(value) || value.length === 0) invalid(`${at} must be a non-empty array`, at);
        const any = value.map((v, i) => equals(path, scalar(v, `${at}[${i}]`), params)).join(' OR ');
        parts.push(op === 'in' ? `(${any})` : `(NOT (${any}))`);
        break;
      }
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte':
        parts.push(compare(path, op, value, at, params));
        break;
      case 'contains':
        parts.push(contains(path, scalar(value, at), params));
        break;
      case 'exists':
        if (typeof value !== 'boolean') invalid(`${at} must be true or false`, at);
        params.push(path);
        parts.push(`(json_type(m.metadata, ?) IS ${value ? 'NOT ' : ''}NULL)`);
        break;
    }
  }
  return parts.length === 1 ? parts[0]! : `(${parts.join(' AND ')})`;
}

function metadataCondition(filter: MetadataFilter, params: unknown[], depth: number, where: string): string {
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
  return parts.length === 0 ? '1' : parts.length === 1 ? parts[0]! : `(${parts.join(' AND ')})`;
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
 * Compiles a filter into one SQL condition on `m` (the `memories` table): tenant, scope, expiry,
 * tags, time ranges and metadata. Bad filters throw a 400 naming the field.
 */
export function compileFilter(tenantId: string, filter: MemoryFilter | undefined, now: number): SqlCondition {
  const parts = ['m.tenant_id = ?', '(m.expires_at IS NULL OR m.expires_at > ?)'];
  const params: unknown[] = [tenantId, now];
  if (filter === undefined) return { sql: parts.join(' AND '), params };
  if (!isPlainObject(filter)) invalid('filter must be an object', 'filter');
  for (const key of ['user_id', 'agent_id', 'session_id'] as const) {
    const value = filter[key];
    if (value === undefined) continue;
    if (typeof value !== 'string') invalid(`filter.${key} must be a string`, `filter.${key}`);
    parts.push(`m.${key} = ?`);
    params.push(value);
  }
  if (filter.tags !== undefined) {
    for (const tag of stringList(filter.tags, 'filter.tags')) {
      parts.push(`EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value = ?)`);
      params.push(tag);
    }
  }
  if (filter.tags_any !== undefined) {
    const tags = stringList(filter.tags_any, 'filter.tags_any');
    if (tags.length === 0) invalid('filter.tags_any must not be empty', 'filter.tags_any');
    parts.push(`EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value IN (${tags.map(() => '?').join(', ')}))`);
    params.push(...tags);
  }
  const ranges = [
    ['created_after', 'm.created_at >= ?'],
    ['created_before', 'm.created_at < ?'],
    ['updated_after', 'm.updated_at >= ?'],
    ['updated_before', 'm.updated_at < ?'],
  ] as const;
  for (const [key, sql] of ranges) {
    const value = filter[key];
    if (value === undefined) continue;
    parts.push(sql);
    params.push(instant(value, `filter.${key}`));
  }
  if (filter.metadata !== undefined)
    parts.push(metadataCondition(filter.metadata as MetadataFilter, params, 0, 'filter.metadata'));
  return { sql: parts.join(' AND '), params };
}
