import type pg from 'pg';
import { InvalidRequestError } from '../errors.js';
import { openPostgresPool } from '../lib/postgres-pool.js';
import type { ChatMessage } from '../llm/index.js';
import { fromRow, MIGRATIONS, ROWS_PER_STATEMENT, type TaskRow, TYPES, upsertSql } from './postgres-rows.js';
import { dropToCaps, overCaps } from './session-caps.js';
import { type ColumnValue, pushFixedValues, pushMutableValues } from './task-columns.js';
import type {
  ApiKeyRecord,
  NewMessage,
  Page,
  SessionCaps,
  SessionRecord,
  SessionSummary,
  Store,
  StoredMessage,
  TaskQuery,
  TaskRecord,
} from './types.js';
import { decodeCursor, encodeCursor, summaryMessage, trimWindow, type WindowRow } from './window.js';

interface PendingMessages {
  sessionId: string;
  tenantId: string;
  messages: NewMessage[];
}

export interface PostgresStoreOptions {
  /** `postgres://user@host:port/database`. */
  url: string;
  /** Schema for agentd's tables (created if missing); default `public`. */
  schema?: string;
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /** Longest a write nobody awaits may wait to be committed with others (default 10 ms). */
  flushIntervalMs?: number;
  /** Bounds on each session's stored messages (the oldest are dropped past them). */
  sessionCaps?: SessionCaps | undefined;
}

/**
 * The store for many nodes: tasks, sessions and keys in Postgres. Like the SQLite store, writes are
 * group-committed: queued, then written together in one transaction (every task of a batch in one
 * multi-row upsert), at the next event-loop turn when someone awaits durability, otherwise within
 * `flushIntervalMs`. Batches commit one after another, and every read first waits for what is
 * queued, so reads see earlier writes of this process.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres';
  readonly #pool: pg.Pool;
  readonly #schema: string;
  readonly #flushIntervalMs: number;
  readonly #caps: SessionCaps;
  #tasks = new Map<string, TaskRecord>();
  #messages: PendingMessages[] = [];
  #usage = new Map<string, [number, number]>();
  #waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  #immediate: NodeJS.Immediate | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Settles when the last batch has committed or failed (batches commit in order). */
  #committing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(pool: pg.Pool, schema: string, flushIntervalMs: number, caps: SessionCaps) {
    this.#pool = pool;
    this.#schema = schema;
    this.#flushIntervalMs = flushIntervalMs;
    this.#caps = caps;
  }

  /** Connects, creates the schema if needed and applies pending migrations. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const { pool, schema } = openPostgresPool({ ...options, types: TYPES });
    const store = new PostgresStore(pool, schema, options.flushIntervalMs ?? 10, options.sessionCaps ?? {});
    try {
      await store.#migrate();
    } catch (err) {
      await pool.end();
      throw err;
    }
    return store;
  }

  get schema(): string {
    return this.#schema;
  }

  async #migrate(): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      // Nodes starting together migrate one at a time.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`agentd:migrate:${this.#schema}`]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.#schema}`);
      await client.query('CREATE TABLE IF NOT EXISTS agentd_migrations (version INTEGER NOT NULL)');
      const done = await client.query<{ version: number }>(
        'SELECT max(version) AS version FROM agentd_migrations',
      );
      const version = done.rows[0]?.version ?? 0;
      for (let next = version; next < MIGRATIONS.length; next++) {
        await client.query(MIGRATIONS[next]!);
        await client.query('INSERT INTO agentd_migrations (version) VALUES ($1)', [next + 1]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  insertTask(task: TaskRecord, durable = true): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the store is closed'));
    this.#tasks.set(task.id, task);
    this.#schedule(durable);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  updateTask(task: TaskRecord): void {
    if (this.#closed) return;
    this.#tasks.set(task.id, task);
    this.#schedule(false);
  }

  async getTask(id: string): Promise<TaskRecord | undefined> {
    await this.#flushNow();
    const { rows } = await this.#pool.query<TaskRow>('SELECT * FROM tasks WHERE id = $1', [id]);
    return rows[0] === undefined ? undefined : fromRow(rows[0]);
  }

  async findTaskByIdempotencyKey(tenantId: string, key: string): Promise<TaskRecord | undefined> {
    await this.#flushNow();
    const { rows } = await this.#pool.query<TaskRow>(
      'SELECT * FROM tasks WHERE tenant_id = $1 AND idempotency_key = $2',
      [tenantId, key],
    );
    return rows[0] === undefined ? undefined : fromRow(rows[0]);
  }

  async listTasks(query: TaskQuery): Promise<Page<TaskRecord>> {
    const params: (string | number)[] = [query.tenant_id];
    const where = ['tenant_id = $1'];
    const add = (sql: string, value: string | number): void => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (query.session_id !== undefined) add('session_id = ?', query.session_id);
    if (query.status !== undefined) add('status = ?', query.status);
    if (query.agent !== undefined) add('agent = ?', query.agent);
    if (query.cursor !== undefined) {
      const cursor = decodeCursor(query.cursor);
      if (cursor === undefined || cursor.length !== 2) {
        throw new InvalidRequestError('`cursor` is not a cursor this server issued', {
          details: { field: 'cursor' },
        });
      }
      params.push(cursor[0] as number, cursor[1] as string);
      where.push(`(created_at, id) < ($${params.length - 1}, $${params.length})`);
    }
    params.push(query.limit + 1);
    await this.#flushNow();
    const { rows } = await this.#pool.query<TaskRow>(
      `SELECT * FROM tasks WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    const more = rows.length > query.limit;
    const items = (more ? rows.slice(0, query.limit) : rows).map(fromRow);
    const last = items[items.length - 1];
    return {
      items,
      next_cursor: more && last !== undefined ? encodeCursor([last.created_at, last.id]) : null,
    };
  }

  async unfinishedTasks(): Promise<TaskRecord[]> {
    await this.#flushNow();
    const { rows } = await this.#pool.query<TaskRow>(
      "SELECT * FROM tasks WHERE status IN ('queued', 'running') ORDER BY created_at",
    );
    return rows.map(fromRow);
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    await this.#flushNow();
    const { rows } = await this.#pool.query<SessionRecord>('SELECT * FROM sessions WHERE id = $1', [id]);
    return rows[0];
  }

  appendMessages(sessionId: string, tenantId: string, messages: NewMessage[]): Promise<void> {
    if (this.#closed || messages.length === 0) return Promise.resolve();
    this.#messages.push({ sessionId, tenantId, messages });
    this.#schedule(false);
    return Promise.resolve();
  }

  async sessionWindow(sessionId: string, maxMessages: number, maxTokens: number): Promise<ChatMessage[]> {
    if (maxMessages === 0) return [];
    await this.#flushNow();
    const { rows } = await this.#pool.query<{
      message: ChatMessage | null;
      tokens: number;
      summary: string | null;
      summary_tokens: number;
    }>({
      name: 'agentd_session_window',
      // The session row comes last (message NULL) and carries the summary, if any.
      text: `(SELECT m.message, m.tokens, NULL AS summary, 0 AS summary_tokens FROM messages m JOIN sessions s ON s.id = m.session_id
  WHERE m.session_id = $1 AND m.seq > s.summary_through AND m.kind = 0 ORDER BY m.seq DESC LIMIT $2)
UNION ALL (SELECT NULL, 0, summary, summary_tokens FROM sessions WHERE id = $1)`,
      values: [sessionId, maxMessages],
    });
    const newestFirst: WindowRow[] = [];
    let summary: WindowRow | undefined;
    for (const row of rows) {
      if (row.message !== null) newestFirst.push({ message: row.message, tokens: row.tokens });
      else if (row.summary !== null)
        summary = { message: summaryMessage(row.summary), tokens: row.summary_tokens };
    }
    return trimWindow(newestFirst, maxMessages, maxTokens, summary);
  }

  async listMessages(sessionId: string, afterSeq: number, limit: number): Promise<Page<StoredMessage>> {
    await this.#flushNow();
    const { rows } = await this.#pool.query<StoredMessage>(
      `SELECT seq, CASE kind WHEN 1 THEN 'summary' ELSE 'message' END AS kind, message, tokens, task_id, created_at
FROM messages WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
      [sessionId, afterSeq, limit + 1],
    );
    const more = rows.length > limit;
    const items = more ? rows.slice(0, limit) : rows;
    const last = items[items.length - 1];
    return { items, next_cursor: more && last !== undefined ? String(last.seq) : null };
  }

  async saveSummary(sessionId: string, summary: SessionSummary): Promise<boolean> {
    if (this.#closed) return false;
    await this.#flushNow();
    return this.#transaction(async (client) => {
      const updated = await client.query(
        `UPDATE sessions SET summary_through = $1, summary = $2, summary_tokens = $3,
  window_tokens = (SELECT coalesce(sum(tokens), 0) FROM messages WHERE session_id = $4 AND seq > $1 AND kind = 0)
WHERE id = $4 AND summary_through = $5`,
        [summary.through, summary.content, summary.tokens, sessionId, summary.expectedThrough],
      );
      if (updated.rowCount === 0) return false;
      const message = summaryMessage(summary.content);
      await writeMessages(
        client,
        {
          sessionId,
          tenantId: '',
          messages: [{ message, tokens: summary.tokens, task_id: summary.task_id }],
        },
        1,
        this.#caps,
      );
      return true;
    });
  }

  async deleteSession(id: string): Promise<boolean> {
    await this.#flushNow();
    return this.#transaction(async (client) => {
      await client.query('DELETE FROM messages WHERE session_id = $1', [id]);
      return ((await client.query('DELETE FROM sessions WHERE id = $1', [id])).rowCount ?? 0) > 0;
    });
  }

  async deleteFinishedTasks(finishedBefore: number, limit: number): Promise<number> {
    await this.#flushNow();
    // created_at ≤ finished_at: the bound lets the oldest rows be found through tasks_created.
    // SKIP LOCKED: nodes sweeping at once take different tasks.
    const { rowCount } = await this.#pool.query(
      `DELETE FROM tasks WHERE id IN (SELECT id FROM tasks
WHERE created_at < $1 AND finished_at < $1 AND status IN ('succeeded', 'failed', 'cancelled')
ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [finishedBefore, limit],
    );
    return rowCount ?? 0;
  }

  async deleteIdleSessions(idleBefore: number, limit: number): Promise<number> {
    await this.#flushNow();
    return this.#transaction(async (client) => {
      // SKIP LOCKED: nodes sweeping at once take different sessions.
      const { rows } = await client.query<{ id: string }>(
        'SELECT id FROM sessions WHERE updated_at < $1 ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED',
        [idleBefore, limit],
      );
      if (rows.length === 0) return 0;
      const ids = rows.map((row) => row.id);
      await client.query('DELETE FROM messages WHERE session_id = ANY($1)', [ids]);
      await client.query('DELETE FROM sessions WHERE id = ANY($1)', [ids]);
      return ids.length;
    });
  }

  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  addSessionUsage(sessionId: string, tokens: number, usd: number): void {
    if (this.#closed) return;
    const current = this.#usage.get(sessionId);
    if (current === undefined) this.#usage.set(sessionId, [tokens, usd]);
    else {
      current[0] += tokens;
      current[1] += usd;
    }
    this.#schedule(false);
  }

  async createApiKey(key: ApiKeyRecord): Promise<void> {
    await this.#pool.query(
      'INSERT INTO api_keys (id, prefix, hash, tenant_id, user_id, name, agents, limits, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)',
      [
        key.id,
        key.prefix,
        key.hash,
        key.tenant_id,
        key.user_id,
        key.name,
        key.agents === null ? null : JSON.stringify(key.agents),
        key.limits === null ? null : JSON.stringify(key.limits),
        key.created_at,
      ],
    );
  }

  async findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const { rows } = await this.#pool.query<ApiKeyRecord>('SELECT * FROM api_keys WHERE hash = $1', [hash]);
    return rows[0];
  }

  async listApiKeys(tenantId?: string): Promise<ApiKeyRecord[]> {
    const { rows } =
      tenantId === undefined
        ? await this.#pool.query<ApiKeyRecord>('SELECT * FROM api_keys ORDER BY created_at, id')
        : await this.#pool.query<ApiKeyRecord>(
            'SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id',
            [tenantId],
          );
    return rows;
  }

  async revokeApiKey(id: string): Promise<boolean> {
    const result = await this.#pool.query(
      'UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL',
      [Date.now(), id],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async countActiveApiKeys(): Promise<number> {
    const { rows } = await this.#pool.query<{ n: number }>(
      'SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL',
    );
    return rows[0]?.n ?? 0;
  }

  flush(): Promise<void> {
    return this.#flushNow();
  }

  async ping(): Promise<boolean> {
    try {
      await this.#pool.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#flushNow();
    } finally {
      this.#closed = true;
      await this.#pool.end();
    }
  }

  /** Drops the schema and everything in it (tests and benchmarks clean up with this). */
  async dropSchema(): Promise<void> {
    if (this.#schema === 'public') throw new Error('refusing to drop the public schema');
    await this.#pool.query(`DROP SCHEMA IF EXISTS ${this.#schema} CASCADE`);
  }

  #schedule(urgent: boolean): void {
    if (urgent) {
      this.#immediate ??= setImmediate(flushStore, this);
    } else if (this.#timer === undefined && this.#immediate === undefined) {
      this.#timer = setTimeout(flushStore, this.#flushIntervalMs, this);
    }
  }

  /** Commits the queued writes (after any batch already committing); resolves when they are. */
  flushQueued(): Promise<void> {
    return this.#flushNow();
  }

  #flushNow(): Promise<void> {
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#immediate = undefined;
    this.#timer = undefined;
    if (this.#tasks.size === 0 && this.#messages.length === 0 && this.#usage.size === 0)
      return this.#committing;
    const tasks = [...this.#tasks.values()];
    const messages = this.#messages;
    const usage = this.#usage;
    const waiters = this.#waiters;
    this.#tasks = new Map();
    this.#messages = [];
    this.#usage = new Map();
    this.#waiters = [];
    const done = this.#committing
      .then(() => this.#commit(tasks, messages, usage))
      .then(
        () => {
          for (const waiter of waiters) waiter.resolve();
        },
        (err: unknown) => {
          for (const waiter of waiters) waiter.reject(err);
          throw err;
        },
      );
    // The chain itself never rejects: a failed batch fails its own waiters, not later reads.
    this.#committing = done.catch(() => {});
    return done;
  }

  async #commit(
    tasks: TaskRecord[],
    messages: PendingMessages[],
    usage: Map<string, [number, number]>,
  ): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      for (let start = 0; start < tasks.length; start += ROWS_PER_STATEMENT) {
        const chunk = tasks.slice(start, start + ROWS_PER_STATEMENT);
        const values: ColumnValue[] = [];
        for (const task of chunk) pushMutableValues(task, pushFixedValues(task, values), 'boolean');
        await client.query(upsertSql(chunk.length), values);
      }
      for (const entry of messages) await writeMessages(client, entry, 0, this.#caps);
      for (const [sessionId, [tokens, usd]] of usage) {
        await client.query(
          'UPDATE sessions SET tokens_used = tokens_used + $1, usd_used = usd_used + $2 WHERE id = $3',
          [tokens, usd, sessionId],
        );
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }
}

/**
 * Reserves sequence numbers by bumping the session's count (creating it if needed), inserts the
 * messages in multi-row statements, then applies the caps. `kind` 1 marks a compaction summary.
 */
async function writeMessages(
  client: pg.PoolClient,
  entry: PendingMessages,
  kind: number,
  caps: SessionCaps,
): Promise<void> {
  const now = Date.now();
  const count = entry.messages.length;
  const json = entry.messages.map((item) => JSON.stringify(item.message));
  let bytes = 0;
  let tokens = 0;
  for (let i = 0; i < count; i++) {
    bytes += Buffer.byteLength(json[i]!);
    tokens += entry.messages[i]!.tokens;
  }
  const bumped = await client.query<{
    message_count: number;
    first_seq: number;
    bytes: number;
    summary_through: number;
  }>({
    name: 'agentd_bump_session',
    text: `INSERT INTO sessions (id, tenant_id, created_at, updated_at, message_count, bytes, window_tokens) VALUES ($1, $2, $3, $3, $4, $5, $6)
ON CONFLICT (id) DO UPDATE SET message_count = sessions.message_count + EXCLUDED.message_count,
  bytes = sessions.bytes + EXCLUDED.bytes, window_tokens = sessions.window_tokens + EXCLUDED.window_tokens,
  updated_at = EXCLUDED.updated_at
RETURNING message_count, first_seq, bytes, summary_through`,
    values: [entry.sessionId, entry.tenantId, now, count, bytes, kind === 0 ? tokens : 0],
  });
  const session = bumped.rows[0]!;
  const first = session.message_count - count + 1;
  const seqs: number[] = new Array(count);
  const roles: string[] = new Array(count);
  const tokenCounts: number[] = new Array(count);
  const taskIds: (string | null)[] = new Array(count);
  const sizes: number[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const item = entry.messages[i]!;
    seqs[i] = first + i;
    roles[i] = item.message.role;
    tokenCounts[i] = item.tokens;
    taskIds[i] = item.task_id;
    sizes[i] = Buffer.byteLength(json[i]!);
  }
  // Columns as arrays: one fixed, prepared statement for any number of messages.
  await client.query({
    name: 'agentd_insert_messages',
    text: `INSERT INTO messages (session_id, seq, message, role, tokens, task_id, created_at, bytes, kind)
SELECT $1, seq, message::jsonb, role, tokens, task_id, $2, bytes, $3
FROM unnest($4::int[], $5::text[], $6::text[], $7::int[], $8::text[], $9::int[]) AS m(seq, message, role, tokens, task_id, bytes)`,
    values: [entry.sessionId, now, kind, seqs, json, roles, tokenCounts, taskIds, sizes],
  });
  // Retained messages are first_seq..message_count without gaps: drops only ever cut the front.
  let retained = session.message_count - session.first_seq + 1;
  let remaining = session.bytes;
  let firstSeq = session.first_seq;
  let bytesDropped = 0;
  let windowTokens = 0;
  while (overCaps(caps, retained, remaining)) {
    const page = await client.query<{ seq: number; bytes: number; tokens: number; kind: number }>(
      'SELECT seq, bytes, tokens, kind FROM messages WHERE session_id = $1 AND seq >= $2 ORDER BY seq LIMIT 256',
      [entry.sessionId, firstSeq],
    );
    const drop = dropToCaps(caps, retained, remaining, session.summary_through, page.rows);
    if (drop === undefined) break;
    retained -= drop.firstSeq - firstSeq;
    remaining -= drop.bytes;
    bytesDropped += drop.bytes;
    windowTokens += drop.windowTokens;
    firstSeq = drop.firstSeq;
  }
  if (firstSeq === session.first_seq) return;
  await client.query('DELETE FROM messages WHERE session_id = $1 AND seq < $2', [entry.sessionId, firstSeq]);
  await client.query(
    'UPDATE sessions SET first_seq = $1, bytes = bytes - $2, window_tokens = window_tokens - $3 WHERE id = $4',
    [firstSeq, bytesDropped, windowTokens, entry.sessionId],
  );
}

function flushStore(store: PostgresStore): void {
  // The waiters learn about a failure; a batch nobody awaits is retried by no one, like SQLite's.
  store.flushQueued().catch(() => {});
}
