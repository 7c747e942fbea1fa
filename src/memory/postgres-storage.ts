import type pg from 'pg';
import { InvalidRequestError } from '../errors.js';
import { openPostgresPool } from '../lib/postgres-pool.js';
import { compilePostgresFilter, SqlParams } from './postgres-filter.js';
import {
  badInput,
  bytes,
  COLUMNS,
  fromBytes,
  HISTORY_INSERT,
  HistoryRows,
  type MemoryRow,
  migrations,
  queryExpression,
  TYPES,
  toRecord,
} from './postgres-rows.js';
import { snapshotJson } from './snapshot.js';
import type {
  EmbedderStamp,
  IndexedVector,
  KeyedMemory,
  ListQuery,
  MemoryChanges,
  MemoryFilter,
  MemoryHistoryEntry,
  MemoryPatch,
  MemoryRecord,
  MemorySnapshot,
  MemoryStorage,
  Page,
  StoredVector,
} from './types.js';

export interface PostgresMemoryStorageOptions {
  /** `postgres://user@host:port/database`. */
  url: string;
  /** Schema for the memory tables (created if missing); default `public`. */
  schema?: string | undefined;
  /** Connections in the pool (default 10). */
  poolSize?: number | undefined;
}

/**
 * Memories in Postgres, for many nodes sharing them: one row per memory, its vector (`bytea` of
 * float32) beside it, full text in a generated `tsvector` column with a GIN index ranked by
 * `ts_rank`, and an append-only history. Every write is one transaction that also appends to
 * the history under a table lock, so history sequence numbers are assigned in commit order: a
 * node that has read up to sequence n never later finds a change numbered below n, which is what
 * lets `changesSince` keep every node's in-memory vector index current.
 */
export class PostgresMemoryStorage implements MemoryStorage {
  readonly kind = 'postgres';
  readonly #pool: pg.Pool;
  readonly #schema: string;
  #closed = false;

  private constructor(pool: pg.Pool, schema: string) {
    this.#pool = pool;
    this.#schema = schema;
  }

  /** Connects, creates the schema if needed and applies pending migrations (one node at a time). */
  static async open(options: PostgresMemoryStorageOptions): Promise<PostgresMemoryStorage> {
    const { pool, schema } = openPostgresPool({ ...options, types: TYPES });
    const storage = new PostgresMemoryStorage(pool, schema);
    try {
      await storage.#transaction(async (client) => {
        // The task store takes the same lock: nodes and stores starting together migrate one at a time.
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`agentd:migrate:${schema}`]);
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
        await client.query(
          'CREATE TABLE IF NOT EXISTS memory_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)',
        );
        const row = await client.query<{ value: string }>(
          `SELECT value FROM memory_meta WHERE name = 'schema_version'`,
        );
        const all = migrations(schema);
        for (let i = Number(row.rows[0]?.value ?? 0); i < all.length; i++) await client.query(all[i]!);
        await client.query(
          `INSERT INTO memory_meta (name, value) VALUES ('schema_version', $1)
           ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
          [String(all.length)],
        );
      });
    } catch (err) {
      await pool.end();
      throw err;
    }
    return storage;
  }

  get schema(): string {
    return this.#schema;
  }

  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      const out = await work(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw badInput(err);
    } finally {
      client.release();
    }
  }

  /** Appends history; the lock (held to commit) makes sequence order commit order. */
  async #appendHistory(client: pg.PoolClient, rows: HistoryRows): Promise<void> {
    if (rows.ids.length === 0) return;
    await client.query('LOCK TABLE memory_history IN SHARE ROW EXCLUSIVE MODE');
    await client.query(HISTORY_INSERT, rows.values());
  }

  async embedder(): Promise<EmbedderStamp | undefined> {
    const result = await this.#pool.query<{ value: string }>(
      `SELECT value FROM memory_meta WHERE name = 'embedder'`,
    );
    const row = result.rows[0];
    return row === undefined ? undefined : (JSON.parse(row.value) as EmbedderStamp);
  }

  async setEmbedder(stamp: EmbedderStamp): Promise<void> {
    await this.#pool.query(
      `INSERT INTO memory_meta (name, value) VALUES ('embedder', $1)
       ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
      [JSON.stringify(stamp)],
    );
  }

  async insert(items: { record: MemoryRecord; vector: Float32Array }[]): Promise<KeyedMemory[]> {
    if (items.length === 0) return [];
    const records = items.map((item) => item.record);
    return this.#transaction(async (client) => {
      const inserted = await client.query<{ key: number; tenant_id: string; id: string }>(
        `INSERT INTO memories (id, tenant_id, user_id, agent_id, session_id, text, metadata, tags, importance, created_at, updated_at, expires_at)
         SELECT u.id, u.tenant_id, u.user_id, u.agent_id, u.session_id, u.text, u.metadata::jsonb,
                ARRAY(SELECT e.tag FROM jsonb_array_elements_text(u.tags::jsonb) WITH ORDINALITY AS e (tag, n) ORDER BY e.n), u.importance, u.created_at, u.updated_at, u.expires_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                     $9::float8[], $10::bigint[], $11::bigint[], $12::bigint[])
           AS u (id, tenant_id, user_id, agent_id, session_id, text, metadata, tags, importance, created_at, updated_at, expires_at)
         RETURNING key, tenant_id, id`,
        [
          records.map((r) => r.id),
          records.map((r) => r.tenant_id),
          records.map((r) => r.user_id),
          records.map((r) => r.agent_id),
          records.map((r) => r.session_id),
          records.map((r) => r.text),
          records.map((r) => JSON.stringify(r.metadata)),
          records.map((r) => JSON.stringify(r.tags)),
          records.map((r) => r.importance),
          records.map((r) => r.created_at),
          records.map((r) => r.updated_at),
          records.map((r) => r.expires_at),
        ],
      );
      // RETURNING promises no order: match rows back by (tenant, id), unique in the table.
      const keys = new Map(inserted.rows.map((row) => [`${row.tenant_id}\u0000${row.id}`, row.key]));
      const out = records.map((record) => ({
        key: keys.get(`${record.tenant_id}\u0000${record.id}`)!,
        record,
      }));
      await client.query(
        'INSERT INTO memory_vectors (key, embedding) SELECT * FROM unnest($1::bigint[], $2::bytea[])',
        [out.map((o) => o.key), items.map((item) => bytes(item.vector))],
      );
      const history = new HistoryRows();
      for (const { key, record } of out)
        history.push(record.id, key, record.tenant_id, 'add', null, snapshotJson(record), record.created_at);
      await this.#appendHistory(client, history);
      return out;
    });
  }

  async get(tenantId: string, id: string): Promise<KeyedMemory | undefined> {
    const result = await this.#pool.query<MemoryRow>({
      name: 'memory-get',
      text: `SELECT ${COLUMNS} FROM memories m WHERE m.tenant_id = $1 AND m.id = $2`,
      values: [tenantId, id],
    });
    const row = result.rows[0];
    return row === undefined ? undefined : { key: row.key, record: toRecord(row) };
  }

  async update(
    tenantId: string,
    id: string,
    patch: MemoryPatch,
    vector: Float32Array | undefined,
    now: number,
  ): Promise<KeyedMemory | undefined> {
    return this.#transaction(async (client) => {
      const found = await client.query<MemoryRow>(
        `SELECT ${COLUMNS} FROM memories m WHERE m.tenant_id = $1 AND m.id = $2 FOR UPDATE`,
        [tenantId, id],
      );
      const row = found.rows[0];
      if (row === undefined) return undefined;
      const before = toRecord(row);
      const after: MemoryRecord = {
        ...before,
        text: patch.text ?? before.text,
        metadata: patch.metadata ?? before.metadata,
        tags: patch.tags ?? before.tags,
        importance: patch.importance ?? before.importance,
        expires_at: patch.expires_at === undefined ? before.expires_at : patch.expires_at,
        updated_at: Math.max(now, before.updated_at),
      };
      // Text and vector change in one transaction: a reader never sees new text with an old vector.
      await client.query(
        `UPDATE memories SET text = $1, metadata = $2::jsonb, tags = $3::text[], importance = $4, expires_at = $5, updated_at = $6
         WHERE key = $7`,
        [
          after.text,
          JSON.stringify(after.metadata),
          after.tags,
          after.importance,
          after.expires_at,
          after.updated_at,
          row.key,
        ],
      );
      if (vector !== undefined)
        await client.query('UPDATE memory_vectors SET embedding = $1 WHERE key = $2', [
          bytes(vector),
          row.key,
        ]);
      const history = new HistoryRows();
      history.push(id, row.key, tenantId, 'update', snapshotJson(before), snapshotJson(after), now);
      await this.#appendHistory(client, history);
      return { key: row.key, record: after };
    });
  }

  async delete(tenantId: string, id: string, now: number): Promise<number | undefined> {
    return this.#transaction(async (client) => {
      // The vector goes with the row (ON DELETE CASCADE); the full-text entry is a column of it.
      const removed = await client.query<MemoryRow>(
        `DELETE FROM memories m WHERE m.tenant_id = $1 AND m.id = $2 RETURNING ${COLUMNS}`,
        [tenantId, id],
      );
      const row = removed.rows[0];
      if (row === undefined) return undefined;
      const history = new HistoryRows();
      history.push(id, row.key, tenantId, 'delete', snapshotJson(toRecord(row)), null, now);
      await this.#appendHistory(client, history);
      return row.key;
    });
  }

  async list(query: ListQuery, now: number): Promise<Page<MemoryRecord>> {
    const params = new SqlParams();
    let sql = `SELECT ${COLUMNS} FROM memories m WHERE ${compilePostgresFilter(query.tenant_id, query.filter, now, params)}`;
    if (query.cursor !== undefined) {
      const after = Number.parseInt(query.cursor, 36);
      if (!Number.isSafeInteger(after) || after < 0)
        throw new InvalidRequestError('`cursor` is not a cursor this API returned', {
          details: { field: 'cursor' },
        });
      sql += ` AND m.key < ${params.add(after)}`;
    }
    sql += ` ORDER BY m.key DESC LIMIT ${params.add(query.limit + 1)}`;
    const rows = (await this.#pool.query<MemoryRow>(sql, params.values)).rows;
    const more = rows.length > query.limit;
    if (more) rows.pop();
    return {
      items: rows.map(toRecord),
      next_cursor: more ? rows[rows.length - 1]!.key.toString(36) : null,
    };
  }

  async history(tenantId: string, id: string): Promise<MemoryHistoryEntry[]> {
    const result = await this.#pool.query<{
      seq: number;
      memory_id: string;
      action: MemoryHistoryEntry['action'];
      old: string | null;
      new: string | null;
      at: number;
    }>(
      'SELECT seq, memory_id, action, old, new, at FROM memory_history WHERE tenant_id = $1 AND memory_id = $2 ORDER BY seq',
      [tenantId, id],
    );
    return result.rows.map((row) => ({
      seq: row.seq,
      memory_id: row.memory_id,
      action: row.action,
      old: row.old === null ? null : (JSON.parse(row.old) as MemorySnapshot),
      new: row.new === null ? null : (JSON.parse(row.new) as MemorySnapshot),
      at: row.at,
    }));
  }

  async filterKeys(tenantId: string, filter: MemoryFilter | undefined, now: number): Promise<number[]> {
    const params = new SqlParams();
    const where = compilePostgresFilter(tenantId, filter, now, params);
    // One row holding every key: 10,000 rows would cost more to decode than the query takes.
    const result = await this.#pool.query<{ keys: number[] | null }>(
      `SELECT array_agg(m.key) AS keys FROM memories m WHERE ${where}`,
      params.values,
    );
    return result.rows[0]?.keys ?? [];
  }

  async count(tenantId: string, filter: MemoryFilter | undefined, now: number): Promise<number> {
    const params = new SqlParams();
    const where = compilePostgresFilter(tenantId, filter, now, params);
    const result = await this.#pool.query<{ count: number }>(
      `SELECT count(*) AS count FROM memories m WHERE ${where}`,
      params.values,
    );
    return result.rows[0]!.count;
  }

  async fulltext(
    tenantId: string,
    text: string,
    filter: MemoryFilter | undefined,
    limit: number,
    now: number,
  ): Promise<{ key: number; score: number }[]> {
    const expression = queryExpression(text);
    if (expression === undefined) return [];
    const params = new SqlParams();
    const query = `to_tsquery('${this.#schema}.agentd_memory', ${params.add(expression)})`;
    const where = compilePostgresFilter(tenantId, filter, now, params);
    const result = await this.#pool.query<{ key: number; score: number }>(
      `SELECT m.key, ts_rank(m.search, q) AS score FROM memories m, ${query} AS q
       WHERE m.search @@ q AND ${where} ORDER BY score DESC, m.key LIMIT ${params.add(limit)}`,
      params.values,
    );
    return result.rows;
  }

  async exact(
    tenantId: string,
    text: string,
    filter: MemoryFilter | undefined,
    limit: number,
    now: number,
  ): Promise<number[]> {
    const params = new SqlParams();
    let where = compilePostgresFilter(tenantId, filter, now, params);
    if (text.length > 0) where += ` AND strpos(lower(m.text), lower(${params.add(text)})) > 0`;
    const result = await this.#pool.query<{ key: number }>(
      `SELECT m.key FROM memories m WHERE ${where} ORDER BY m.key DESC LIMIT ${params.add(limit)}`,
      params.values,
    );
    return result.rows.map((row) => row.key);
  }

  async byKeys(keys: number[]): Promise<Map<number, MemoryRecord>> {
    const out = new Map<number, MemoryRecord>();
    if (keys.length === 0) return out;
    const result = await this.#pool.query<MemoryRow>({
      name: 'memory-by-keys',
      text: `SELECT ${COLUMNS} FROM memories m WHERE m.key = ANY($1::bigint[])`,
      values: [keys],
    });
    for (const row of result.rows) out.set(row.key, toRecord(row));
    return out;
  }

  async vectorsByKeys(keys: number[]): Promise<Map<number, Float32Array>> {
    const out = new Map<number, Float32Array>();
    if (keys.length === 0) return out;
    const result = await this.#pool.query<{ key: number; embedding: Buffer }>({
      name: 'memory-vectors-by-keys',
      text: 'SELECT key, embedding FROM memory_vectors WHERE key = ANY($1::bigint[])',
      values: [keys],
    });
    for (const row of result.rows) out.set(row.key, fromBytes(row.embedding));
    return out;
  }

  async *vectors(): AsyncIterable<IndexedVector[]> {
    let after = 0;
    for (;;) {
      const result = await this.#pool.query<{
        key: number;
        tenant_id: string;
        text: string;
        expires_at: number | null;
        embedding: Buffer;
      }>(
        `SELECT m.key, m.tenant_id, m.text, m.expires_at, v.embedding FROM memories m JOIN memory_vectors v ON v.key = m.key
         WHERE m.key > $1 ORDER BY m.key LIMIT 5000`,
        [after],
      );
      const rows = result.rows;
      if (rows.length === 0) return;
      after = rows[rows.length - 1]!.key;
      yield rows.map((row) => ({
        key: row.key,
        tenant_id: row.tenant_id,
        text: row.text,
        expires_at: row.expires_at,
        vector: fromBytes(row.embedding),
      }));
    }
  }

  async replaceVectors(batch: StoredVector[]): Promise<void> {
    if (batch.length === 0) return;
    await this.#pool.query(
      `UPDATE memory_vectors v SET embedding = u.embedding
       FROM unnest($1::bigint[], $2::bytea[]) AS u (key, embedding) WHERE v.key = u.key`,
      [batch.map((item) => item.key), batch.map((item) => bytes(item.vector))],
    );
  }

  async changesSince(afterSeq: number): Promise<MemoryChanges> {
    // One indexed read, prepared once per connection (it runs before every search): the changes
    // after `afterSeq` (usually none) and the newest sequence.
    const result = await this.#pool.query<{
      seq: number | null;
      key: number | null;
      tenant_id: string | null;
    }>({
      name: 'memory-changes',
      text: `SELECT seq, memory_key AS key, tenant_id FROM memory_history WHERE seq > $1
             UNION ALL SELECT max(seq), NULL, NULL FROM memory_history`,
      values: [afterSeq],
    });
    const seen = new Set<number>();
    const changes: MemoryChanges = { keys: [], tenants: [], seq: 0 };
    for (const row of result.rows) {
      if (row.key === null) {
        changes.seq = row.seq ?? 0;
      } else if (!seen.has(row.key)) {
        seen.add(row.key);
        changes.keys.push(row.key);
        changes.tenants.push(row.tenant_id!);
      }
    }
    return changes;
  }

  async purgeExpired(now: number): Promise<{ key: number; tenant_id: string; text: string }[]> {
    return this.#transaction(async (client) => {
      // Several nodes may sweep at once: each row is deleted, and recorded, by exactly one of them.
      const removed = await client.query<MemoryRow>(
        `DELETE FROM memories m WHERE m.expires_at IS NOT NULL AND m.expires_at <= $1 RETURNING ${COLUMNS}`,
        [now],
      );
      const history = new HistoryRows();
      for (const row of removed.rows)
        history.push(row.id, row.key, row.tenant_id, 'delete', snapshotJson(toRecord(row)), null, now);
      await this.#appendHistory(client, history);
      return removed.rows.map((row) => ({ key: row.key, tenant_id: row.tenant_id, text: row.text }));
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }

  /** Drops the schema and everything in it (tests and benchmarks clean up with this). */
  async dropSchema(): Promise<void> {
    if (this.#schema === 'public') throw new Error('refusing to drop the public schema');
    await this.#pool.query(`DROP SCHEMA IF EXISTS ${this.#schema} CASCADE`);
  }
}
