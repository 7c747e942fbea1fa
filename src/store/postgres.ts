import pg from 'pg';
import { ConfigError, InvalidRequestError } from '../errors.js';
import type { ChatMessage } from '../llm/index.js';
import type {
  ApiKeyRecord,
  NewMessage,
  Page,
  SessionRecord,
  Store,
  StoredMessage,
  TaskQuery,
  TaskRecord,
} from './types.js';
import { decodeCursor, encodeCursor, trimWindow } from './window.js';

/** Schema migrations, applied in order; `agentd_migrations` records how many ran. */
const MIGRATIONS: string[] = [
  `
CREATE TABLE tasks (
  id TEXT PRIMARY KEY,
  agent TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  user_id TEXT,
  session_id TEXT,
  idempotency_key TEXT,
  input TEXT NOT NULL,
  metadata JSONB,
  options JSONB NOT NULL,
  created_at BIGINT NOT NULL,
  status TEXT NOT NULL,
  result TEXT,
  partial BOOLEAN NOT NULL DEFAULT false,
  error JSONB,
  model TEXT,
  input_tokens BIGINT NOT NULL DEFAULT 0,
  output_tokens BIGINT NOT NULL DEFAULT 0,
  cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
  iterations INTEGER NOT NULL DEFAULT 0,
  tool_calls INTEGER NOT NULL DEFAULT 0,
  attempt INTEGER NOT NULL DEFAULT 1,
  event_seq INTEGER NOT NULL DEFAULT 0,
  started_at BIGINT,
  finished_at BIGINT
);
CREATE INDEX tasks_tenant_created ON tasks (tenant_id, created_at DESC, id DESC);
CREATE INDEX tasks_session_created ON tasks (session_id, created_at DESC, id DESC) WHERE session_id IS NOT NULL;
CREATE UNIQUE INDEX tasks_idempotency ON tasks (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_unfinished ON tasks (created_at) WHERE status IN ('queued', 'running');

CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  message_count INTEGER NOT NULL DEFAULT 0,
  tokens_used BIGINT NOT NULL DEFAULT 0,
  usd_used DOUBLE PRECISION NOT NULL DEFAULT 0
);

CREATE TABLE messages (
  session_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  message JSONB NOT NULL,
  role TEXT NOT NULL,
  tokens INTEGER NOT NULL,
  task_id TEXT,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (session_id, seq)
);

CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  prefix TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  tenant_id TEXT NOT NULL,
  user_id TEXT,
  name TEXT,
  agents JSONB,
  limits JSONB,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT
);
`,
];

const TASK_COLUMNS = [
  'id',
  'agent',
  'tenant_id',
  'user_id',
  'session_id',
  'idempotency_key',
  'input',
  'metadata',
  'options',
  'created_at',
  // Columns that change after creation.
  'status',
  'result',
  'partial',
  'error',
  'model',
  'input_tokens',
  'output_tokens',
  'cost_usd',
  'iterations',
  'tool_calls',
  'attempt',
  'event_seq',
  'started_at',
  'finished_at',
] as const;
const MUTABLE_COLUMNS = TASK_COLUMNS.slice(TASK_COLUMNS.indexOf('status'));
/** Rows per multi-row statement: well under Postgres' 65,535 bind parameters. */
const ROWS_PER_STATEMENT = 1000;

/**
 * One statement inserts new tasks and updates known ones. A finished row is never written again,
 * and a row is never taken back to an earlier attempt: a node that lost a task (its lock expired
 * while it was stalled) cannot overwrite the state of the node that re-ran it.
 */
function upsertSql(rows: number): string {
  const width = TASK_COLUMNS.length;
  const values: string[] = [];
  for (let r = 0; r < rows; r++) {
    const params: string[] = [];
    for (let c = 1; c <= width; c++) params.push(`$${r * width + c}`);
    values.push(`(${params.join(', ')})`);
  }
  return `INSERT INTO tasks (${TASK_COLUMNS.join(', ')}) VALUES ${values.join(', ')}
ON CONFLICT (id) DO UPDATE SET ${MUTABLE_COLUMNS.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}
WHERE tasks.status NOT IN ('succeeded', 'failed', 'cancelled') AND tasks.attempt <= EXCLUDED.attempt`;
}

type SqlValue = string | number | boolean | null;

function taskValues(task: TaskRecord, out: SqlValue[]): void {
  out.push(
    task.id,
    task.agent,
    task.tenant_id,
    task.user_id,
    task.session_id,
    task.idempotency_key,
    task.input,
    task.metadata === null ? null : JSON.stringify(task.metadata),
    JSON.stringify(task.options),
    task.created_at,
    task.status,
    task.result,
    task.partial,
    task.error === null ? null : JSON.stringify(task.error),
    task.model,
    task.usage.input_tokens,
    task.usage.output_tokens,
    task.cost_usd,
    task.iterations,
    task.tool_calls,
    task.attempt,
    task.event_seq,
    task.started_at,
    task.finished_at,
  );
}

interface TaskRow {
  id: string;
  agent: string;
  tenant_id: string;
  user_id: string | null;
  session_id: string | null;
  idempotency_key: string | null;
  input: string;
  metadata: Record<string, unknown> | null;
  options: TaskRecord['options'];
  created_at: number;
  status: TaskRecord['status'];
  result: string | null;
  partial: boolean;
  error: TaskRecord['error'];
  model: string | null;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  iterations: number;
  tool_calls: number;
  attempt: number;
  event_seq: number;
  started_at: number | null;
  finished_at: number | null;
}

function fromRow(row: TaskRow): TaskRecord {
  return {
    id: row.id,
    agent: row.agent,
    tenant_id: row.tenant_id,
    user_id: row.user_id,
    session_id: row.session_id,
    status: row.status,
    input: row.input,
    result: row.result,
    partial: row.partial,
    error: row.error,
    model: row.model,
    usage: { input_tokens: row.input_tokens, output_tokens: row.output_tokens },
    cost_usd: row.cost_usd,
    iterations: row.iterations,
    tool_calls: row.tool_calls,
    idempotency_key: row.idempotency_key,
    metadata: row.metadata,
    options: row.options,
    attempt: row.attempt,
    event_seq: row.event_seq,
    created_at: row.created_at,
    started_at: row.started_at,
    finished_at: row.finished_at,
  };
}

/** BIGINT columns hold epoch milliseconds and counters: well inside a double's exact range. */
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === pg.types.builtins.INT8) return Number;
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as pg.CustomTypesConfig;

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
  #tasks = new Map<string, TaskRecord>();
  #messages: PendingMessages[] = [];
  #usage = new Map<string, [number, number]>();
  #waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  #immediate: NodeJS.Immediate | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Settles when the last batch has committed or failed (batches commit in order). */
  #committing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(pool: pg.Pool, schema: string, flushIntervalMs: number) {
    this.#pool = pool;
    this.#schema = schema;
    this.#flushIntervalMs = flushIntervalMs;
  }

  /** Connects, creates the schema if needed and applies pending migrations. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const schema = options.schema ?? 'public';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new ConfigError(
        `storage.schema must be a lower-case SQL identifier (letters, digits, _), got "${schema}"`,
      );
    }
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      options: `-c search_path=${schema}`,
      types: TYPES,
    });
    // An idle connection that drops (a Postgres restart) must not crash the process.
    pool.on('error', () => {});
    const store = new PostgresStore(pool, schema, options.flushIntervalMs ?? 10);
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
    const { rows } = await this.#pool.query<{ message: ChatMessage; tokens: number }>(
      'SELECT message, tokens FROM messages WHERE session_id = $1 ORDER BY seq DESC LIMIT $2',
      [sessionId, maxMessages],
    );
    return trimWindow(rows, maxMessages, maxTokens);
  }

  async listMessages(sessionId: string, afterSeq: number, limit: number): Promise<Page<StoredMessage>> {
    await this.#flushNow();
    const { rows } = await this.#pool.query<StoredMessage>(
      'SELECT seq, message, tokens, task_id, created_at FROM messages WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
      [sessionId, afterSeq, limit + 1],
    );
    const more = rows.length > limit;
    const items = more ? rows.slice(0, limit) : rows;
    const last = items[items.length - 1];
    return { items, next_cursor: more && last !== undefined ? String(last.seq) : null };
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
        const values: SqlValue[] = [];
        for (const task of chunk) taskValues(task, values);
        await client.query(upsertSql(chunk.length), values);
      }
      for (const entry of messages) await writeMessages(client, entry);
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

/** Reserves sequence numbers by bumping the session's count, then inserts the messages in one statement. */
async function writeMessages(client: pg.PoolClient, entry: PendingMessages): Promise<void> {
  const now = Date.now();
  const count = entry.messages.length;
  const bumped = await client.query<{ message_count: number }>(
    `INSERT INTO sessions (id, tenant_id, created_at, updated_at, message_count) VALUES ($1, $2, $3, $3, $4)
ON CONFLICT (id) DO UPDATE SET message_count = sessions.message_count + EXCLUDED.message_count, updated_at = EXCLUDED.updated_at
RETURNING message_count`,
    [entry.sessionId, entry.tenantId, now, count],
  );
  let seq = bumped.rows[0]!.message_count - count;
  const values: SqlValue[] = [];
  const rows: string[] = [];
  for (const item of entry.messages) {
    seq++;
    const base = values.length;
    values.push(
      entry.sessionId,
      seq,
      JSON.stringify(item.message),
      item.message.role,
      item.tokens,
      item.task_id,
      now,
    );
    rows.push(
      `($${base + 1}, $${base + 2}, $${base + 3}, $${base + 4}, $${base + 5}, $${base + 6}, $${base + 7})`,
    );
  }
  await client.query(
    `INSERT INTO messages (session_id, seq, message, role, tokens, task_id, created_at) VALUES ${rows.join(', ')}`,
    values,
  );
}

function flushStore(store: PostgresStore): void {
  // The waiters learn about a failure; a batch nobody awaits is retried by no one, like SQLite's.
  store.flushQueued().catch(() => {});
}
