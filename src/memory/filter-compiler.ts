import { InvalidRequestError } from '../errors.js';
import type { FieldCondition, MemoryFilter, MetadataFilter } from './types.js';

/** A JSON scalar a metadata condition compares with. */
export type Scalar = string | number | boolean | null;

/** An ordering operator of a metadata comparison. */
export type Ordering = '>' | '>=' | '<' | '<=';

/**
 * What differs between the SQL engines a memory filter compiles to: placeholders, how a metadata
 * value is addressed and compared, and how tags are matched. Every condition a dialect returns is
 * typed like JSON (1 never equals "1" nor true) and is never NULL, so NOT and OR behave as in a
 * plain scan. `F` is the dialect's reference to a metadata field; it may be used more than once.
 */
export interface FilterDialect<F> {
  /** The condition that always holds. */
  readonly always: string;
  /** Adds a parameter; its placeholder. */
  param(value: unknown): string;
  /** Adds a time (epoch ms) compared with a timestamp column; its placeholder. */
  time(value: number): string;
  /** The metadata field at these dot-separated names. */
  field(names: readonly string[]): F;
  equals(field: F, value: Scalar): string;
  /** Numbers compare with numbers, strings with strings by code point (ISO dates work). */
  compare(field: F, op: Ordering, value: number | string): string;
  /** A string field contains a substring; an array field contains an element equal to the value. */
  contains(field: F, value: Scalar): string;
  exists(field: F, present: boolean): string;
  /** The memory has every one of these tags (at least one). */
  allTags(tags: string[]): string;
  /** The memory has at least one of these tags (at least one). */
  anyTag(tags: string[]): string;
}

const OPERATORS = new Set(['eq', 'ne', 'in', 'nin', 'gt', 'gte', 'lt', 'lte', 'contains', 'exists']);
const ORDERING: Record<string, Ordering> = { gt: '>', gte: '>=', lt: '<', lte: '<=' };
const FIELD = /^[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*$/;
const MAX_DEPTH = 16;

function invalid(message: string, field: string): never {
  throw new InvalidRequestError(message, { details: { field } });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function scalar(value: unknown, where: string): Scalar {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  return invalid(`${where} must be a string, a finite number, a boolean or null`, where);
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

function condition<F>(dialect: FilterDialect<F>, name: string, spec: unknown): string {
  const where = `filter.metadata.${name}`;
  if (!FIELD.test(name)) invalid(`metadata field "${name}" must be dot-separated names`, where);
  const names = name.split('.');
  if (!isPlainObject(spec)) return dialect.equals(dialect.field(names), scalar(spec, where));
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
        parts.push(dialect.equals(dialect.field(names), scalar(value, at)));
        break;
      case 'ne':
        parts.push(`(NOT ${dialect.equals(dialect.field(names), scalar(value, at))})`);
        break;
      case 'in':
      case 'nin': {
        if (!Array.isArray(value) || value.length === 0) invalid(`${at} must be a non-empty array`, at);
        const values = value.map((v, i) => scalar(v, `${at}[${i}]`));
        const field = dialect.field(names);
        const any = values.map((v) => dialect.equals(field, v)).join(' OR ');
        parts.push(op === 'in' ? `(${any})` : `(NOT (${any}))`);
        break;
      }
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte':
        if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value)))
          parts.push(dialect.compare(dialect.field(names), ORDERING[op]!, value));
        else invalid(`${at} must be a number or a string`, at);
        break;
      case 'contains':
        parts.push(dialect.contains(dialect.field(names), scalar(value, at)));
        break;
      case 'exists':
        if (typeof value !== 'boolean') invalid(`${at} must be true or false`, at);
        parts.push(dialect.exists(dialect.field(names), value));
        break;
    }
  }
  return parts.length === 1 ? parts[0]! : `(${parts.join(' AND ')})`;
}

function metadataCondition<F>(
  dialect: FilterDialect<F>,
  filter: MetadataFilter,
  depth: number,
  where: string,
): string {
  if (depth > MAX_DEPTH) invalid(`${where} nests deeper than ${MAX_DEPTH} levels`, where);
  if (!isPlainObject(filter)) invalid(`${where} must be an object`, where);
  const parts: string[] = [];
  for (const [key, value] of Object.entries(filter)) {
    if (key === 'and' || key === 'or') {
      if (!Array.isArray(value) || value.length === 0)
        invalid(`${where}.${key} must be a non-empty array`, `${where}.${key}`);
      const inner = value.map((f, i) =>
        metadataCondition(dialect, f as MetadataFilter, depth + 1, `${where}.${key}[${i}]`),
      );
      parts.push(`(${inner.join(key === 'and' ? ' AND ' : ' OR ')})`);
    } else if (key === 'not') {
      parts.push(`(NOT ${metadataCondition(dialect, value as MetadataFilter, depth + 1, `${where}.not`)})`);
    } else {
      parts.push(condition(dialect, key, value));
    }
  }
  return parts.length === 0 ? dialect.always : parts.length === 1 ? parts[0]! : `(${parts.join(' AND ')})`;
}

/**
 * Compiles a filter into one SQL condition on `m` (the `memories` table) in the dialect's SQL:
 * tenant, scope, expiry, tags, time ranges and metadata, its values added as the dialect's
 * parameters in the order they appear in the text. Bad filters throw a 400 naming the field.
 */
export function compileMemoryFilter<F>(
  dialect: FilterDialect<F>,
  tenantId: string,
  filter: MemoryFilter | undefined,
  now: number,
): string {
  const parts = [
    `m.tenant_id = ${dialect.param(tenantId)}`,
    `(m.expires_at IS NULL OR m.expires_at > ${dialect.param(now)})`,
  ];
  if (filter === undefined) return parts.join(' AND ');
  if (!isPlainObject(filter)) invalid('filter must be an object', 'filter');
  for (const key of ['user_id', 'agent_id', 'session_id'] as const) {
    const value = filter[key];
    if (value === undefined) continue;
    if (typeof value !== 'string') invalid(`filter.${key} must be a string`, `filter.${key}`);
    parts.push(`m.${key} = ${dialect.param(value)}`);
  }
  if (filter.tags !== undefined) {
    const tags = stringList(filter.tags, 'filter.tags');
    if (tags.length > 0) parts.push(dialect.allTags(tags));
  }
  if (filter.tags_any !== undefined) {
    const tags = stringList(filter.tags_any, 'filter.tags_any');
    if (tags.length === 0) invalid('filter.tags_any must not be empty', 'filter.tags_any');
    parts.push(dialect.anyTag(tags));
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
    parts.push(`${sql} ${dialect.time(instant(value, `filter.${key}`))}`);
  }
  if (filter.metadata !== undefined)
    parts.push(metadataCondition(dialect, filter.metadata as MetadataFilter, 0, 'filter.metadata'));
  return parts.join(' AND ');
}
