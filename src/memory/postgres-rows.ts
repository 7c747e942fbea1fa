import pg from 'pg';
import { InvalidRequestError } from '../errors.js';
import { contentWords } from './stopwords.js';
import type { MemoryRecord } from './types.js';

// Rows of the Postgres memory tables: schema, type parsing and conversions for postgres-storage.ts.

/**
 * Memory tables, versioned in `memory_meta`. The text-search configuration is English Snowball
 * stemming without a stop-word list, like SQLite's `porter unicode61` tokenizer: a query made only
 * of function words still matches. Vectors are float32 `bytea`, searched in process.
 */
export function migrations(schema: string): string[] {
  return [
    `
CREATE TEXT SEARCH DICTIONARY ${schema}.agentd_memory_stem (TEMPLATE = snowball, Language = english);
CREATE TEXT SEARCH CONFIGURATION ${schema}.agentd_memory (COPY = pg_catalog.english);
ALTER TEXT SEARCH CONFIGURATION ${schema}.agentd_memory
  ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part WITH ${schema}.agentd_memory_stem;
CREATE TABLE memories (
  key BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  user_id TEXT,
  agent_id TEXT,
  session_id TEXT,
  text TEXT NOT NULL,
  metadata JSONB NOT NULL,
  tags TEXT[] NOT NULL,
  importance DOUBLE PRECISION NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  expires_at BIGINT,
  search TSVECTOR GENERATED ALWAYS AS (to_tsvector('${schema}.agentd_memory', text)) STORED
);
CREATE UNIQUE INDEX memories_tenant_id ON memories (tenant_id, id);
CREATE INDEX memories_tenant_user ON memories (tenant_id, user_id, expires_at);
CREATE INDEX memories_tenant_agent ON memories (tenant_id, agent_id, expires_at);
CREATE INDEX memories_expires ON memories (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX memories_search ON memories USING GIN (search);
-- Vectors live apart so that scans over memories (filters) never read them.
CREATE TABLE memory_vectors (
  key BIGINT PRIMARY KEY REFERENCES memories (key) ON DELETE CASCADE,
  embedding BYTEA NOT NULL
);
CREATE TABLE memory_history (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  memory_id TEXT NOT NULL,
  memory_key BIGINT NOT NULL,
  tenant_id TEXT NOT NULL,
  action TEXT NOT NULL,
  old TEXT,
  new TEXT,
  at BIGINT NOT NULL
);
CREATE INDEX memory_history_memory ON memory_history (tenant_id, memory_id, seq);
`,
  ];
}

export const COLUMNS =
  'm.key, m.id, m.tenant_id, m.user_id, m.agent_id, m.session_id, m.text, m.metadata, m.tags, m.importance, m.created_at, m.updated_at, m.expires_at';

const INT8_ARRAY = 1016;

/** `{1,2,3}` (an int8[] without NULLs, as `array_agg` of keys returns it) as numbers. */
function parseKeys(text: string): number[] {
  if (text.length <= 2) return [];
  const parts = text.slice(1, -1).split(',');
  const out = new Array<number>(parts.length);
  for (let i = 0; i < parts.length; i++) out[i] = Number(parts[i]);
  return out;
}

/** int8 as a JS number: keys, sequences and times stay far below 2^53. */
export const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === pg.types.builtins.INT8) return Number;
    if (oid === INT8_ARRAY) return parseKeys;
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as pg.CustomTypesConfig;

export interface MemoryRow {
  key: number;
  id: string;
  tenant_id: string;
  user_id: string | null;
  agent_id: string | null;
  session_id: string | null;
  text: string;
  metadata: Record<string, unknown>;
  tags: string[];
  importance: number;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
}

export function toRecord(row: MemoryRow): MemoryRecord {
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    user_id: row.user_id,
    agent_id: row.agent_id,
    session_id: row.session_id,
    text: row.text,
    metadata: row.metadata,
    tags: row.tags,
    importance: row.importance,
    created_at: row.created_at,
    updated_at: row.updated_at,
    expires_at: row.expires_at,
  };
}

export function bytes(vector: Float32Array): Buffer {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
}

export function fromBytes(buffer: Buffer): Float32Array {
  // Copied: the driver's buffer need not be 4-byte aligned.
  const out = new Float32Array(buffer.byteLength / 4);
  new Uint8Array(out.buffer).set(buffer);
  return out;
}

/** A tsquery matching any of the text's content words (letters and digits only: no syntax leaks in). */
export function queryExpression(text: string): string | undefined {
  const words = contentWords(text);
  if (words.length === 0) return undefined;
  return [...new Set(words)].join(' | ');
}

/** Postgres refuses NUL in text and jsonb; SQLite does not. Either way it is the caller's input. */
export function badInput(err: unknown): unknown {
  const code = (err as { code?: string }).code;
  if (code === '23505')
    return new InvalidRequestError('a memory with this id already exists', { details: { field: 'id' } });
  if (code === '22021' || code === '22P05')
    return new InvalidRequestError('a memory may not contain the NUL character', {
      details: { field: 'text' },
    });
  return err;
}

export const HISTORY_INSERT = `INSERT INTO memory_history (memory_id, memory_key, tenant_id, action, old, new, at)
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])`;

/** History rows as the column arrays `HISTORY_INSERT` takes. */
export class HistoryRows {
  readonly ids: string[] = [];
  readonly keys: number[] = [];
  readonly tenants: string[] = [];
  readonly actions: string[] = [];
  readonly olds: (string | null)[] = [];
  readonly news: (string | null)[] = [];
  readonly ats: number[] = [];

  push(
    id: string,
    key: number,
    tenant: string,
    action: string,
    old: string | null,
    next: string | null,
    at: number,
  ) {
    this.ids.push(id);
    this.keys.push(key);
    this.tenants.push(tenant);
    this.actions.push(action);
    this.olds.push(old);
    this.news.push(next);
    this.ats.push(at);
  }

  values(): unknown[] {
    return [this.ids, this.keys, this.tenants, this.actions, this.olds, this.news, this.ats];
  }
}
