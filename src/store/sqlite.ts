import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { InvalidRequestError } from '../errors.js';
import type { ChatMessage } from '../llm/index.js';
import { type QueuedMessages, queueMessages } from './queued-messages.js';
import { type CapRow, dropToCaps, overCaps } from './session-caps.js';
import { SessionRowCache } from './session-rows.js';
import { SessionTailCache } from './session-tail.js';
import { fromRow, insertValues, type KeyRow, keyFromRow, type TaskRow, updateValues } from './sqlite-rows.js';
import { MIGRATIONS } from './sqlite-schema.js';
import { MUTABLE_COLUMNS, TASK_COLUMNS } from './task-columns.js';
import type {
  ApiKeyRecord,
  MessageKind,
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
import { TERMINAL_STATUSES } from './types.js';
import { decodeCursor, encodeCursor, summaryMessage, trimWindow, type WindowRow } from './window.js';

/** Messages per multi-row INSERT: one statement call instead of 64 (fewer native transitions). */
const ROWS_PER_INSERT = 64;
/** Values bound per message; the session id, time and kind are bound once per statement by name. */
const MESSAGE_COLUMNS = 6;
const MESSAGE_ROW = '(@session, ?, ?, ?, ?, ?, @now, ?, @kind)';

export interface SqliteStoreOptions {
  /** A file path, or `:memory:`. */
  path: string;
  /** Longest a write that nobody awaits may wait to be committed with others (default 10 ms). */
  flushIntervalMs?: number;
  /** Bounds on each session's stored messages (the oldest are dropped past them). */
  sessionCaps?: SessionCaps | undefined;
  /**
   * Keep recent sessions' rows and newest messages in memory, so that session checks and window
   * reads need neither SQL nor an early commit (default true).
   */
  tailCache?: boolean;
}

/**
 * The default store: one SQLite file in WAL mode. Writes are queued and committed together in
 * one transaction (group commit): at the next event-loop turn when someone awaits durability
 * (`insertTask`), otherwise within `flushIntervalMs`. All writes of one task inside a batch
 * become a single row write of its latest state. A new task nobody awaits (a synchronous run)
 * that is still unfinished at its first commit waits for the next one, so a short task is
 * written once, with its outcome, rather than inserted and then updated; it is committed at the
 * latest at the second flush after it was queued. Reads always see earlier writes: a read that
 * goes to SQL first commits what is queued (a session read: what is queued for that session);
 * session rows and windows of recently used sessions are answered from caches that already
 * include the queued writes, so a session's next turn does not commit the previous one early (it
 * is committed with its batch, as any other write).
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly #db: Database.Database;
  /** Tasks to write, each once, with the state of their row (see RowWrite). */
  #tasks = new Map<TaskRecord, RowWrite>();
  #messages: QueuedMessages[] = [];
  /** Sessions that `#messages` appends to (a session read from SQL commits first only for these). */
  readonly #messageSessions = new Set<string>();
  /** Session usage to add: session id → [tokens, usd]. */
  #usage = new Map<string, [number, number]>();
  /** The next commit, which durable inserts wait for (one promise per batch). */
  #batch: BatchCommit | undefined;
  /** What the unawaited inserts queued since the last commit wait for: their rows' commit. */
  #lazyBatch: BatchCommit | undefined;
  /** The lazy batch whose unfinished rows the last commit held back: settled by the next one. */
  #heldBatch: BatchCommit | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #flushIntervalMs: number;
  readonly #caps: SessionCaps;
  readonly #tails: SessionTailCache | undefined;
  readonly #rows: SessionRowCache | undefined;
  /** `PRAGMA data_version` when the tails were last known current: it moves when another connection commits. */
  #dataVersion = 0;
  /** Parameters of the multi-row message INSERT, reused across batches. */
  readonly #rowValues: (string | number | null)[] = new Array(ROWS_PER_INSERT * MESSAGE_COLUMNS);
  readonly #sharedValues = { session: '', now: 0, kind: 0 };
  readonly #stmts;
  readonly #commit: (
    tasks: Map<TaskRecord, RowWrite>,
    messages: QueuedMessages[],
    usage: Map<string, [number, number]>,
    holdBack: Map<TaskRecord, RowWrite> | undefined,
  ) => void;

  constructor(options: SqliteStoreOptions) {
    this.#flushIntervalMs = options.flushIntervalMs ?? 10;
    this.#caps = options.sessionCaps ?? {};
    this.#tails = options.tailCache === false ? undefined : new SessionTailCache();
    this.#rows = options.tailCache === false ? undefined : new SessionRowCache();
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
      // One statement creates the session or reserves sequence numbers in it.
      bumpSession: db
        .prepare(
          `INSERT INTO sessions (id, tenant_id, created_at, updated_at, message_count, bytes, window_tokens)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET message_count = message_count + excluded.message_count,
  bytes = bytes + excluded.bytes, window_tokens = window_tokens + excluded.window_tokens, updated_at = excluded.updated_at
RETURNING message_count, first_seq, bytes, summary_through`,
        )
        .raw(),
      insertMessage: db.prepare(`INSERT INTO messages (${MESSAGE_INSERT_COLUMNS}) VALUES ${MESSAGE_ROW}`),
      insertMessages: db.prepare(
        `INSERT INTO messages (${MESSAGE_INSERT_COLUMNS}) VALUES ${Array.from({ length: ROWS_PER_INSERT }, () => MESSAGE_ROW).join(', ')}`,
      ),
      oldestMessages: db.prepare(
        'SELECT seq, bytes, tokens, kind FROM messages WHERE session_id = ? AND seq >= ? ORDER BY seq',
      ),
      dropMessages: db.prepare('DELETE FROM messages WHERE session_id = ? AND seq < ?'),
      dropped: db.prepare(
        'UPDATE sessions SET first_seq = ?, bytes = bytes - ?, window_tokens = window_tokens - ? WHERE id = ?',
      ),
      windowHead: db.prepare('SELECT summary, summary_tokens FROM sessions WHERE id = ?').raw(),
      summarise: db.prepare(
        `UPDATE sessions SET summary_through = ?, summary = ?, summary_tokens = ?,
  window_tokens = (SELECT coalesce(sum(tokens), 0) FROM messages WHERE session_id = ? AND seq > ? AND kind = 0)
WHERE id = ? AND summary_through = ?`,
      ),
      deleteSession: db.prepare('DELETE FROM sessions WHERE id = ?'),
      deleteMessages: db.prepare('DELETE FROM messages WHERE session_id = ?'),
      idleSessions: db
        .prepare('SELECT id FROM sessions WHERE updated_at < ? ORDER BY updated_at LIMIT ?')
        .pluck(),
      // Rowid order is insertion order: the oldest rows are found first, without an index.
      deleteFinishedTasks: db.prepare(
        `DELETE FROM tasks WHERE rowid IN (SELECT rowid FROM tasks
WHERE finished_at < ? AND status IN ('succeeded', 'failed', 'cancelled') ORDER BY rowid LIMIT ?)`,
      ),
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
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
      window: db
        .prepare(
          `SELECT message, tokens, bytes FROM messages
WHERE session_id = ? AND seq > coalesce((SELECT summary_through FROM sessions WHERE id = ?), 0) AND kind = 0
ORDER BY seq DESC LIMIT ?`,
        )
        .raw(),
      listMessages: db.prepare(
        'SELECT seq, kind, message, tokens, task_id, created_at FROM messages WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?',
      ),
    };
    this.#commit = db.transaction(
      (
        tasks: Map<TaskRecord, RowWrite>,
        messages: QueuedMessages[],
        usage: Map<string, [number, number]>,
        holdBack: Map<TaskRecord, RowWrite> | undefined,
      ) => {
        for (const [task, write] of tasks) {
          if (write === RowWrite.Update) this.#stmts.updateTask.run(...updateValues(task));
          else if (
            holdBack !== undefined &&
            write === RowWrite.InsertLazy &&
            !TERMINAL_STATUSES.has(task.status)
          )
            holdBack.set(task, RowWrite.InsertHeld);
          else this.#stmts.insertTask.run(...insertValues(task));
        }
        for (const entry of messages) this.#writeMessages(entry);
        for (const [sessionId, [tokens, usd]] of usage) this.#stmts.addUsage.run(tokens, usd, sessionId);
      },
    );
    this.#dataVersion = this.#stmts.dataVersion.get() as number;
  }

  insertTask(task: TaskRecord, durable = true): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the store is closed'));
    this.#tasks.set(task, durable ? RowWrite.Insert : RowWrite.InsertLazy);
    this.#schedule(durable);
    if (durable) {
      this.#batch ??= new BatchCommit();
      return this.#batch.promise;
    }
    this.#lazyBatch ??= new BatchCommit();
    return this.#lazyBatch.promise;
  }

  updateTask(task: TaskRecord): void {
    // After close (a forced shutdown), late writes of abandoned tasks are dropped: those tasks
    // stay `running` in the file and are recovered by the next start.
    if (this.#closed) return;
    if (!this.#tasks.has(task)) this.#tasks.set(task, RowWrite.Update);
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
    const cache = this.#rows;
    if (cache !== undefined) {
      this.#checkDataVersion();
      const cached = cache.get(id);
      if (cached !== undefined) return cached ?? undefined;
    }
    this.#flushFor(id);
    const row = this.#stmts.getSession.get(id) as SessionRecord | undefined;
    cache?.fill(id, row ?? null);
    return row;
  }

  appendMessages(sessionId: string, tenantId: string, messages: NewMessage[]): Promise<void> {
    if (this.#closed || messages.length === 0) return Promise.resolve();
    const entry = queueMessages(sessionId, tenantId, messages, Date.now());
    this.#messages.push(entry);
    this.#messageSessions.add(sessionId);
    this.#cacheQueued(entry);
    this.#schedule(false);
    return Promise.resolve();
  }

  async sessionWindow(sessionId: string, maxMessages: number, maxTokens: number): Promise<ChatMessage[]> {
    if (maxMessages === 0) return [];
    const tails = this.#tails;
    if (tails !== undefined) {
      this.#checkDataVersion();
      const cached = tails.window(sessionId, maxMessages, maxTokens);
      if (cached !== undefined) return cached;
      if (this.#rows?.get(sessionId) === null) {
        // No session and nothing queued for it: no messages (a new session's first turn).
        tails.fill(sessionId, [], 0, true, undefined, maxMessages);
        return [];
      }
    }
    this.#flushFor(sessionId);
    const rows = this.#stmts.window.all(sessionId, sessionId, maxMessages) as [string, number, number][];
    const newestFirst: WindowRow[] = new Array(rows.length);
    let bytes = 0;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      newestFirst[i] = { message: JSON.parse(row[0]) as ChatMessage, tokens: row[1] };
      bytes += row[2];
    }
    // A full window never reaches back to the summary: only a short one needs the session's row.
    let summary: WindowRow | undefined;
    if (rows.length < maxMessages) {
      const head = this.#stmts.windowHead.get(sessionId) as [string | null, number] | undefined;
      if (head !== undefined && head[0] !== null)
        summary = { message: summaryMessage(head[0]), tokens: head[1] };
    }
    if (tails !== undefined) {
      tails.fill(
        sessionId,
        newestFirst.slice().reverse(),
        bytes,
        rows.length < maxMessages,
        summary,
        maxMessages,
      );
    }
    return trimWindow(newestFirst, maxMessages, maxTokens, summary);
  }

  async listMessages(sessionId: string, afterSeq: number, limit: number): Promise<Page<StoredMessage>> {
    this.#flushNow();
    const rows = this.#stmts.listMessages.all(sessionId, afterSeq, limit + 1) as {
      seq: number;
      kind: number;
      message: string;
      tokens: number;
      task_id: string | null;
      created_at: number;
    }[];
    const more = rows.length > limit;
    const items = (more ? rows.slice(0, limit) : rows).map((row) => ({
      seq: row.seq,
      kind: (row.kind === 1 ? 'summary' : 'message') as MessageKind,
      message: JSON.parse(row.message) as ChatMessage,
      tokens: row.tokens,
      task_id: row.task_id,
      created_at: row.created_at,
    }));
    const last = items[items.length - 1];
    return { items, next_cursor: more && last !== undefined ? String(last.seq) : null };
  }

  async saveSummary(sessionId: string, summary: SessionSummary): Promise<boolean> {
    if (this.#closed) return false;
    this.#flushNow();
    const message = summaryMessage(summary.content);
    const saved = this.#db.transaction(() => {
      const changed = this.#stmts.summarise.run(
        summary.through,
        summary.content,
        summary.tokens,
        sessionId,
        summary.through,
        sessionId,
        summary.expectedThrough,
      ).changes;
      if (changed === 0) return false;
      // The summary is kept as a message too (the history shows it), outside the window count.
      const entry = queueMessages(
        sessionId,
        '',
        [{ message, tokens: summary.tokens, task_id: summary.task_id }],
        Date.now(),
      );
      this.#insertMessages(entry, 1);
      return true;
    })();
    this.#forget(sessionId);
    return saved;
  }

  async deleteSession(id: string): Promise<boolean> {
    this.#flushNow();
    const deleted = this.#db.transaction(() => {
      this.#stmts.deleteMessages.run(id);
      return this.#stmts.deleteSession.run(id).changes > 0;
    })();
    this.#forget(id);
    return deleted;
  }

  async deleteFinishedTasks(finishedBefore: number, limit: number): Promise<number> {
    this.#flushNow();
    return this.#stmts.deleteFinishedTasks.run(finishedBefore, limit).changes;
  }

  async deleteIdleSessions(idleBefore: number, limit: number): Promise<number> {
    this.#flushNow();
    const ids = this.#stmts.idleSessions.all(idleBefore, limit) as string[];
    if (ids.length === 0) return 0;
    this.#db.transaction(() => {
      for (const id of ids) {
        this.#stmts.deleteMessages.run(id);
        this.#stmts.deleteSession.run(id);
      }
    })();
    for (const id of ids) this.#forget(id);
    return ids.length;
  }

  addSessionUsage(sessionId: string, tokens: number, usd: number): void {
    if (this.#closed) return;
    const current = this.#usage.get(sessionId);
    if (current === undefined) this.#usage.set(sessionId, [tokens, usd]);
    else {
      current[0] += tokens;
      current[1] += usd;
    }
    this.#rows?.used(sessionId, tokens, usd);
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

  /**
   * Commits queued writes in one transaction and settles the waiters; unfinished new tasks
   * nobody awaits wait for the next commit (once). Reads call `#flushNow()`, which writes all.
   */
  flushQueued(): void {
    this.#flushNow(false);
  }

  #flushNow(all = true): void {
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#immediate = undefined;
    this.#timer = undefined;
    if (this.#tasks.size === 0 && this.#messages.length === 0 && this.#usage.size === 0) return;
    const tasks = this.#tasks;
    const messages = this.#messages;
    const usage = this.#usage;
    const batch = this.#batch;
    const lazy = this.#lazyBatch;
    const held = this.#heldBatch;
    const next = all ? undefined : new Map<TaskRecord, RowWrite>();
    this.#tasks = new Map();
    this.#messages = [];
    this.#messageSessions.clear();
    this.#usage = new Map();
    this.#batch = undefined;
    this.#lazyBatch = undefined;
    this.#heldBatch = undefined;
    try {
      this.#commit(tasks, messages, usage, next);
    } catch (err) {
      // The caches include the writes that were just lost.
      this.#tails?.clear();
      this.#rows?.clear();
      batch?.reject(err);
      lazy?.reject(err);
      held?.reject(err);
      throw err;
    }
    batch?.resolve();
    held?.resolve();
    if (next === undefined || next.size === 0) {
      lazy?.resolve();
      return;
    }
    // The commit ran synchronously: nothing was queued meanwhile, so the held rows are the queue.
    this.#tasks = next;
    this.#heldBatch = lazy;
    this.#schedule(false);
  }

  /** Commits queued writes before a session is read from SQL, if any of them touch it. */
  #flushFor(sessionId: string): void {
    if (this.#messageSessions.has(sessionId) || this.#usage.has(sessionId)) this.#flushNow();
  }

  /** Re-reads sessions from storage when another connection (another process) committed. */
  #checkDataVersion(): void {
    const version = this.#stmts.dataVersion.get() as number;
    if (version !== this.#dataVersion) {
      this.#dataVersion = version;
      this.#tails?.clear();
      this.#rows?.clear();
    }
  }

  /**
   * Moves a session's cached row and tail by messages just queued, unless the commit may drop
   * messages for the session caps (only the commit knows which): then the session is read from
   * storage next time.
   */
  #cacheQueued(entry: QueuedMessages): void {
    const tails = this.#tails;
    const rows = this.#rows;
    if (tails === undefined || rows === undefined) return;
    const id = entry.sessionId;
    const caps = this.#caps;
    if (caps.maxMessages !== undefined || caps.maxBytes !== undefined) {
      const retained = rows.retained(id);
      if (
        retained === undefined ||
        overCaps(caps, retained[0] + entry.messages.length, retained[1] + entry.bytes)
      ) {
        this.#forget(id);
        return;
      }
    }
    rows.appended(id, entry.tenantId, entry.messages.length, entry.bytes, entry.tokens, entry.at);
    const count = entry.messages.length;
    const added: WindowRow[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const item = entry.messages[i]!;
      added[i] = { message: item.message, tokens: item.tokens };
    }
    tails.append(id, added, entry.bytes);
  }

  /** Drops a session from the caches after a change they do not follow. */
  #forget(sessionId: string): void {
    this.#tails?.drop(sessionId);
    this.#rows?.drop(sessionId);
  }

  #writeMessages(entry: QueuedMessages): void {
    this.#insertMessages(entry, 0);
  }

  /**
   * Reserves sequence numbers (creating the session if needed), inserts the messages 64 per
   * statement, then applies the session caps. `kind` 1 marks a compaction summary, which is not
   * part of the window's token count.
   */
  #insertMessages(entry: QueuedMessages, kind: number): void {
    const { sessionId, messages, json, sizes } = entry;
    const count = messages.length;
    const [messageCount, firstSeq, totalBytes, summaryThrough] = this.#stmts.bumpSession.get(
      sessionId,
      entry.tenantId,
      entry.at,
      entry.at,
      count,
      entry.bytes,
      kind === 0 ? entry.tokens : 0,
    ) as [number, number, number, number];
    let seq = messageCount - count;
    const shared = this.#sharedValues;
    shared.session = sessionId;
    shared.now = entry.at;
    shared.kind = kind;
    const values = this.#rowValues;
    let i = 0;
    for (; i + ROWS_PER_INSERT <= count; i += ROWS_PER_INSERT) {
      for (let j = 0; j < ROWS_PER_INSERT; j++) {
        const item = messages[i + j]!;
        const o = j * MESSAGE_COLUMNS;
        values[o] = ++seq;
        values[o + 1] = json[i + j]!;
        values[o + 2] = item.message.role;
        values[o + 3] = item.tokens;
        values[o + 4] = item.task_id;
        values[o + 5] = sizes[i + j]!;
      }
      this.#stmts.insertMessages.run(shared, values);
    }
    for (; i < count; i++) {
      const item = messages[i]!;
      this.#stmts.insertMessage.run(
        shared,
        ++seq,
        json[i]!,
        item.message.role,
        item.tokens,
        item.task_id,
        sizes[i]!,
      );
    }
    const retained = messageCount - firstSeq + 1;
    if (overCaps(this.#caps, retained, totalBytes)) {
      this.#dropOldest(sessionId, retained, totalBytes, firstSeq, summaryThrough);
    }
  }

  /** Drops a session's oldest messages until it fits its caps. */
  #dropOldest(
    sessionId: string,
    retained: number,
    bytes: number,
    firstSeq: number,
    summaryThrough: number,
  ): void {
    const drop = dropToCaps(
      this.#caps,
      retained,
      bytes,
      summaryThrough,
      this.#stmts.oldestMessages.iterate(sessionId, firstSeq) as Iterable<CapRow>,
    );
    this.#forget(sessionId);
    if (drop === undefined) return;
    this.#stmts.dropMessages.run(sessionId, drop.firstSeq);
    this.#stmts.dropped.run(drop.firstSeq, drop.bytes, drop.windowTokens, sessionId);
  }
}

const MESSAGE_INSERT_COLUMNS = 'session_id, seq, message, role, tokens, task_id, created_at, bytes, kind';

/** How a queued task reaches its row at the next commit. */
enum RowWrite {
  /** The row exists: update its mutable columns. */
  Update = 0,
  /** A new row someone awaits: insert it now. */
  Insert = 1,
  /** A new row nobody awaits: held back once while its task is unfinished. */
  InsertLazy = 2,
  /** A new row held back once already: insert it now. */
  InsertHeld = 3,
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
