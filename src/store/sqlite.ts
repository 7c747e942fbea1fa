import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { InvalidRequestError } from '../errors.js';
import type { ChatMessage } from '../llm/index.js';
import { MUTABLE_COLUMNS, TASK_COLUMNS } from './task-columns.js';
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

/** Schema migrations, applied in order to bring a file from `user_version` up to date. */
const MIGRATIONS: string[] = [
  `
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY,
  agent TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  user_id TEXT,
  session_id TEXT,
  status TEXT NOT NULL,
  input TEXT NOT NULL,
  result TEXT,
  partial INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  model TEXT,
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  cost_usd REAL NOT NULL DEFAULT 0,
  iterations INTEGER NOT NULL DEFAULT 0,
  tool_calls INTEGER NOT NULL DEFAULT 0,
  idempotency_key TEXT,
  metadata TEXT,
  options TEXT NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 1,
  event_seq INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER
);
CREATE INDEX IF NOT EXISTS tasks_tenant_created ON tasks (tenant_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS tasks_session_created ON tasks (session_id, created_at DESC, id DESC) WHERE session_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS tasks_idempotency ON tasks (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_unfinished ON tasks (status) WHERE status IN ('queued', 'running');

CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  message_count INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS messages (
  session_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  message TEXT NOT NULL,
  role TEXT NOT NULL,
  tokens INTEGER NOT NULL,
  task_id TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
`,
  `
ALTER TABLE sessions ADD COLUMN tokens_used INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN usd_used REAL NOT NULL DEFAULT 0;
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  prefix TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  tenant_id TEXT NOT NULL,
  user_id TEXT,
  name TEXT,
  agents TEXT,
  limits TEXT,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
`,
];

interface TaskRow {
  id: string;
  agent: string;
  tenant_id: string;
  user_id: string | null;
  session_id: string | null;
  status: TaskRecord['status'];
  input: string;
  result: string | null;
  partial: number;
  error: string | null;
  model: string | null;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  iterations: number;
  tool_calls: number;
  idempotency_key: string | null;
  metadata: string | null;
  options: string;
  attempt: number;
  event_seq: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

interface PendingMessages {
  sessionId: string;
  tenantId: string;
  messages: NewMessage[];
}

export interface SqliteStoreOptions {
  /** A file path, or `:memory:`. */
  path: string;
  /** Longest a write that nobody awaits may wait to be committed with others (default 10 ms). */
  flushIntervalMs?: number;
}

/**
 * The default store: one SQLite file in WAL mode. Writes are queued and committed together in
 * one transaction (group commit): at the next event-loop turn when someone awaits durability
 * (`insertTask`), otherwise within `flushIntervalMs`. All writes of one task inside a batch
 * become a single row write of its latest state. Every read first commits what is queued, so
 * reads always see earlier writes.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly #db: Database.Database;
  /** Tasks to write, each once: `true` when its row does not exist yet. */
  #tasks = new Map<TaskRecord, boolean>();
  #messages: PendingMessages[] = [];
  /** Session usage to add: session id → [tokens, usd]. */
  #usage = new Map<string, [number, number]>();
  /** The commit that the inserts queued since the last one wait for (one promise per batch). */
  #batch: BatchCommit | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #flushIntervalMs: number;
  readonly #stmts;
  readonly #commit: (
    tasks: Map<TaskRecord, boolean>,
    messages: PendingMessages[],
    usage: Map<string, [number, number]>,
  ) => void;

  constructor(options: SqliteStoreOptions) {
    this.#flushIntervalMs = options.flushIntervalMs ?? 10;
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    const db = new Database(options.path);
    this.#db = db;
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    db.pragma('temp_store = MEMORY');
    const version = db.pragma('user_version', { simple: true }) as number;
    for (let next = version; next < MIGRATIONS.length; next++) {
      db.transaction(() => {
        db.exec(MIGRATIONS[next]!);
        db.pragma(`user_version = ${next + 1}`);
      })();
    }
    this.#stmts = {
      // Positional parameters: binding two dozen named ones costs a property lookup each.
      insertTask: db.prepare(
        `INSERT INTO tasks (${TASK_COLUMNS.join(', ')}) VALUES (${TASK_COLUMNS.map(() => '?').join(', ')})`,
      ),
      updateTask: db.prepare(
        `UPDATE tasks SET ${MUTABLE_COLUMNS.map((c) => `${c} = ?`).join(', ')} WHERE id = ?`,
      ),
      getTask: db.prepare('SELECT * FROM tasks WHERE id = ?'),
      byIdempotency: db.prepare('SELECT * FROM tasks WHERE tenant_id = ? AND idempotency_key = ?'),
      unfinished: db.prepare("SELECT * FROM tasks WHERE status IN ('queued', 'running') ORDER BY created_at"),
      getSession: db.prepare('SELECT * FROM sessions WHERE id = ?'),
      createSession: db.prepare(
        'INSERT INTO sessions (id, tenant_id, created_at, updated_at, message_count) VALUES (?, ?, ?, ?, 0) ON CONFLICT (id) DO NOTHING',
      ),
      bumpSession: db.prepare(
        'UPDATE sessions SET message_count = message_count + ?, updated_at = ? WHERE id = ? RETURNING message_count, tenant_id',
      ),
      insertMessage: db.prepare(
        'INSERT INTO messages (session_id, seq, message, role, tokens, task_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      addUsage: db.prepare(
        'UPDATE sessions SET tokens_used = tokens_used + ?, usd_used = usd_used + ? WHERE id = ?',
      ),
      createKey: db.prepare(
        'INSERT INTO api_keys (id, prefix, hash, tenant_id, user_id, name, agents, limits, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)',
      ),
      keyByHash: db.prepare('SELECT * FROM api_keys WHERE hash = ?'),
      listKeys: db.prepare('SELECT * FROM api_keys ORDER BY created_at'),
      listTenantKeys: db.prepare('SELECT * FROM api_keys WHERE tenant_id = ? ORDER BY created_at'),
      revokeKey: db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      countKeys: db.prepare('SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL'),
      window: db.prepare(
        'SELECT message, tokens FROM messages WHERE session_id = ? ORDER BY seq DESC LIMIT ?',
      ),
      listMessages: db.prepare(
        'SELECT seq, message, tokens, task_id, created_at FROM messages WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?',
      ),
    };
    this.#commit = db.transaction(
      (
        tasks: Map<TaskRecord, boolean>,
        messages: PendingMessages[],
        usage: Map<string, [number, number]>,
      ) => {
        for (const [task, isNew] of tasks) {
          if (isNew) this.#stmts.insertTask.run(...insertValues(task));
          else this.#stmts.updateTask.run(...updateValues(task));
        }
        for (const entry of messages) this.#writeMessages(entry);
        for (const [sessionId, [tokens, usd]] of usage) this.#stmts.addUsage.run(tokens, usd, sessionId);
      },
    );
  }

  insertTask(task: TaskRecord, durable = true): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the store is closed'));
    this.#tasks.set(task, true);
    this.#schedule(durable);
    this.#batch ??= new BatchCommit();
    return this.#batch.promise;
  }

  updateTask(task: TaskRecord): void {
    // After close (a forced shutdown), late writes of abandoned tasks are dropped: those tasks
    // stay `running` in the file and are recovered by the next start.
    if (this.#closed) return;
    if (!this.#tasks.has(task)) this.#tasks.set(task, false);
    this.#schedule(false);
  }

  async getTask(id: string): Promise<TaskRecord | undefined> {
    this.#flushNow();
    const row = this.#stmts.getTask.get(id) as TaskRow | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  async findTaskByIdempotencyKey(tenantId: string, key: string): Promise<TaskRecord | undefined> {
    this.#flushNow();
    const row = this.#stmts.byIdempotency.get(tenantId, key) as TaskRow | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  async listTasks(query: TaskQuery): Promise<Page<TaskRecord>> {
    this.#flushNow();
    const where = ['tenant_id = ?'];
    const params: (string | number)[] = [query.tenant_id];
    if (query.session_id !== undefined) {
      where.push('session_id = ?');
      params.push(query.session_id);
    }
    if (query.status !== undefined) {
      where.push('status = ?');
      params.push(query.status);
    }
    if (query.agent !== undefined) {
      where.push('agent = ?');
      params.push(query.agent);
    }
    if (query.cursor !== undefined) {
      const cursor = decodeCursor(query.cursor);
      if (cursor === undefined || cursor.length !== 2) {
        throw new InvalidRequestError('`cursor` is not a cursor this server issued', {
          details: { field: 'cursor' },
        });
      }
      where.push('(created_at, id) < (?, ?)');
      params.push(cursor[0] as number, cursor[1] as string);
    }
    params.push(query.limit + 1);
    const rows = this.#db
      .prepare(`SELECT * FROM tasks WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT ?`)
      .all(...params) as TaskRow[];
    const more = rows.length > query.limit;
    const items = (more ? rows.slice(0, query.limit) : rows).map(fromRow);
    const last = items[items.length - 1];
    return {
      items,
      next_cursor: more && last !== undefined ? encodeCursor([last.created_at, last.id]) : null,
    };
  }

  async unfinishedTasks(): Promise<TaskRecord[]> {
    this.#flushNow();
    return (this.#stmts.unfinished.all() as TaskRow[]).map(fromRow);
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    this.#flushNow();
    return this.#stmts.getSession.get(id) as SessionRecord | undefined;
  }

  appendMessages(sessionId: string, tenantId: string, messages: NewMessage[]): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#messages.push({ sessionId, tenantId, messages });
    this.#schedule(false);
    return Promise.resolve();
  }

  async sessionWindow(sessionId: string, maxMessages: number, maxTokens: number): Promise<ChatMessage[]> {
    if (maxMessages === 0) return [];
    this.#flushNow();
    const rows = this.#stmts.window.all(sessionId, maxMessages) as { message: string; tokens: number }[];
    return trimWindow(
      rows.map((row) => ({ message: JSON.parse(row.message) as ChatMessage, tokens: row.tokens })),
      maxMessages,
      maxTokens,
    );
  }

  async listMessages(sessionId: string, afterSeq: number, limit: number): Promise<Page<StoredMessage>> {
    this.#flushNow();
    const rows = this.#stmts.listMessages.all(sessionId, afterSeq, limit + 1) as {
      seq: number;
      message: string;
      tokens: number;
      task_id: string | null;
      created_at: number;
    }[];
    const more = rows.length > limit;
    const items = (more ? rows.slice(0, limit) : rows).map((row) => ({
      seq: row.seq,
      message: JSON.parse(row.message) as ChatMessage,
      tokens: row.tokens,
      task_id: row.task_id,
      created_at: row.created_at,
    }));
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
    this.#stmts.createKey.run(
      key.id,
      key.prefix,
      key.hash,
      key.tenant_id,
      key.user_id,
      key.name,
      key.agents === null ? null : JSON.stringify(key.agents),
      key.limits === null ? null : JSON.stringify(key.limits),
      key.created_at,
    );
  }

  async findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const row = this.#stmts.keyByHash.get(hash) as KeyRow | undefined;
    return row === undefined ? undefined : keyFromRow(row);
  }

  async listApiKeys(tenantId?: string): Promise<ApiKeyRecord[]> {
    const rows = (
      tenantId === undefined ? this.#stmts.listKeys.all() : this.#stmts.listTenantKeys.all(tenantId)
    ) as KeyRow[];
    return rows.map(keyFromRow);
  }

  async revokeApiKey(id: string): Promise<boolean> {
    return this.#stmts.revokeKey.run(Date.now(), id).changes > 0;
  }

  async countActiveApiKeys(): Promise<number> {
    return (this.#stmts.countKeys.get() as { n: number }).n;
  }

  async flush(): Promise<void> {
    this.#flushNow();
  }

  async ping(): Promise<boolean> {
    try {
      this.#db.prepare('SELECT 1').get();
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#flushNow();
    this.#closed = true;
    this.#db.close();
  }

  /** Commits queued writes now if someone awaits them, otherwise within the flush interval. */
  #schedule(urgent: boolean): void {
    if (urgent) {
      this.#immediate ??= setImmediate(flushStore, this);
    } else if (this.#timer === undefined && this.#immediate === undefined) {
      this.#timer = setTimeout(flushStore, this.#flushIntervalMs, this);
    }
  }

  /** Commits every queued write in one transaction and settles the waiters. */
  flushQueued(): void {
    this.#flushNow();
  }

  #flushNow(): void {
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#immediate = undefined;
    this.#timer = undefined;
    if (this.#tasks.size === 0 && this.#messages.length === 0 && this.#usage.size === 0) return;
    const tasks = this.#tasks;
    const messages = this.#messages;
    const usage = this.#usage;
    const batch = this.#batch;
    this.#tasks = new Map();
    this.#messages = [];
    this.#usage = new Map();
    this.#batch = undefined;
    try {
      this.#commit(tasks, messages, usage);
    } catch (err) {
      batch?.reject(err);
      throw err;
    }
    batch?.resolve();
  }

  #writeMessages(entry: PendingMessages): void {
    const now = Date.now();
    this.#stmts.createSession.run(entry.sessionId, entry.tenantId, now, now);
    const bumped = this.#stmts.bumpSession.get(entry.messages.length, now, entry.sessionId) as {
      message_count: number;
    };
    let seq = bumped.message_count - entry.messages.length;
    for (const item of entry.messages) {
      seq++;
      this.#stmts.insertMessage.run(
        entry.sessionId,
        seq,
        JSON.stringify(item.message),
        item.message.role,
        item.tokens,
        item.task_id,
        now,
      );
    }
  }
}

/** One transaction's outcome, shared by every insert that waits for it. */
class BatchCommit {
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (err: unknown) => void;

  constructor() {
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

function flushStore(store: SqliteStore): void {
  try {
    store.flushQueued();
  } catch {
    // The waiters were rejected with the error; nothing else to do here.
  }
}

type SqlValue = string | number | null;

/** TASK_COLUMNS order: the fixed columns, then the mutable ones (one array, no copies). */
function insertValues(task: TaskRecord): SqlValue[] {
  return [
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
    task.partial ? 1 : 0,
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
  ];
}

/** The mutable columns in MUTABLE_COLUMNS order, then the id for the WHERE clause. */
function updateValues(task: TaskRecord): SqlValue[] {
  return [
    task.status,
    task.result,
    task.partial ? 1 : 0,
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
    task.id,
  ];
}

interface KeyRow extends Omit<ApiKeyRecord, 'agents' | 'limits'> {
  agents: string | null;
  limits: string | null;
}

function keyFromRow(row: KeyRow): ApiKeyRecord {
  return {
    ...row,
    agents: row.agents === null ? null : (JSON.parse(row.agents) as string[]),
    limits: row.limits === null ? null : (JSON.parse(row.limits) as Record<string, number>),
  };
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
    partial: row.partial === 1,
    error: row.error === null ? null : JSON.parse(row.error),
    model: row.model,
    usage: { input_tokens: row.input_tokens, output_tokens: row.output_tokens },
    cost_usd: row.cost_usd,
    iterations: row.iterations,
    tool_calls: row.tool_calls,
    idempotency_key: row.idempotency_key,
    metadata: row.metadata === null ? null : JSON.parse(row.metadata),
    options: JSON.parse(row.options),
    attempt: row.attempt,
    event_seq: row.event_seq,
    created_at: row.created_at,
    started_at: row.started_at,
    finished_at: row.finished_at,
  };
}
