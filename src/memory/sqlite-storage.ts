import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { InvalidRequestError } from '../errors.js';
import { compileFilter } from './filter.js';
import { snapshotJson } from './snapshot.js';
import { contentWords } from './stopwords.js';
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
import { WalCheckpointer, WRITER_AUTOCHECKPOINT } from './wal-checkpointer.js';

/** Memory tables, versioned in `memory_meta` (the task store owns the file's `user_version`). */
const MIGRATIONS: string[] = [
  `
CREATE TABLE IF NOT EXISTS memories (
  key INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  user_id TEXT,
  agent_id TEXT,
  session_id TEXT,
  text TEXT NOT NULL,
  metadata TEXT NOT NULL,
  tags TEXT NOT NULL,
  importance REAL NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  expires_at INTEGER
);
-- Vectors live apart so that scans over memories (filters) never read them.
CREATE TABLE IF NOT EXISTS memory_vectors (
  key INTEGER PRIMARY KEY,
  embedding BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS memory_vectors_delete AFTER DELETE ON memories BEGIN
  DELETE FROM memory_vectors WHERE key = old.key;
END;
CREATE UNIQUE INDEX IF NOT EXISTS memories_tenant_id ON memories (tenant_id, id);
-- Covering the scope and the expiry check: a scoped candidate list reads only the index.
CREATE INDEX IF NOT EXISTS memories_tenant_user ON memories (tenant_id, user_id, expires_at);
CREATE INDEX IF NOT EXISTS memories_tenant_agent ON memories (tenant_id, agent_id, expires_at);
CREATE INDEX IF NOT EXISTS memories_expires ON memories (expires_at) WHERE expires_at IS NOT NULL;

CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(
  text, content='memories', content_rowid='key', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS memories_fts_insert AFTER INSERT ON memories BEGIN
  INSERT INTO memories_fts (rowid, text) VALUES (new.key, new.text);
END;
CREATE TRIGGER IF NOT EXISTS memories_fts_delete AFTER DELETE ON memories BEGIN
  INSERT INTO memories_fts (memories_fts, rowid, text) VALUES ('delete', old.key, old.text);
END;
CREATE TRIGGER IF NOT EXISTS memories_fts_update AFTER UPDATE OF text ON memories BEGIN
  INSERT INTO memories_fts (memories_fts, rowid, text) VALUES ('delete', old.key, old.text);
  INSERT INTO memories_fts (rowid, text) VALUES (new.key, new.text);
END;

CREATE TABLE IF NOT EXISTS memory_history (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  memory_id TEXT NOT NULL,
  memory_key INTEGER NOT NULL,
  tenant_id TEXT NOT NULL,
  action TEXT NOT NULL,
  old TEXT,
  new TEXT,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS memory_history_memory ON memory_history (memory_id, seq);
`,
  // A batch feeds FTS5 in one statement (see `insert`): the per-row trigger cost 12 µs a memory.
  'DROP TRIGGER IF EXISTS memories_fts_insert;',
];

const COLUMNS =
  'm.key, m.id, m.tenant_id, m.user_id, m.agent_id, m.session_id, m.text, m.metadata, m.tags, m.importance, m.created_at, m.updated_at, m.expires_at';

interface MemoryRow {
  key: number;
  id: string;
  tenant_id: string;
  user_id: string | null;
  agent_id: string | null;
  session_id: string | null;
  text: string;
  metadata: string;
  tags: string;
  importance: number;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
}

function toRecord(row: MemoryRow): MemoryRecord {
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    user_id: row.user_id,
    agent_id: row.agent_id,
    session_id: row.session_id,
    text: row.text,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    tags: JSON.parse(row.tags) as string[],
    importance: row.importance,
    created_at: row.created_at,
    updated_at: row.updated_at,
    expires_at: row.expires_at,
  };
}

function blob(vector: Float32Array): Buffer {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
}

function fromBlob(buffer: Buffer): Float32Array {
  // Copied: the buffer may be reused by the driver and need not be 4-byte aligned.
  const out = new Float32Array(buffer.byteLength / 4);
  new Uint8Array(out.buffer).set(buffer);
  return out;
}

/** An FTS5 query matching any of the text's content words (each quoted: no syntax leaks in). */
function matchExpression(text: string): string | undefined {
  const words = contentWords(text);
  if (words.length === 0) return undefined;
  return [...new Set(words)].map((w) => `"${w}"`).join(' OR ');
}

/**
 * The page size of a memory file this storage creates. A 384-d vector row is 1.5 KB, which fills
 * 4 KB pages only three quarters, and a batch's commit writes fewer, larger WAL frames: SQLite's
 * share of an add is a third smaller than with the default 4 KB (discuss/0201).
 */
export const MEMORY_PAGE_SIZE = 16_384;

export interface SqliteMemoryStorageOptions {
  /** A file path (memories' own file, or the task store's), or `:memory:`. */
  path: string;
  busyTimeoutMs?: number;
  /**
   * Page size if this creates the file (default `MEMORY_PAGE_SIZE`); an existing file keeps its
   * own. A file shared with the task store should keep SQLite's 4 KB: its small, frequent commits
   * would write larger WAL frames.
   */
  pageSize?: number;
}

/**
 * Memories in SQLite: one row per memory holding its text and metadata, its vector beside it, an FTS5
 * index (fed once per added batch, kept in step by triggers on update and delete), and an
 * append-only history. WAL lets readers run while one
 * writer commits; the busy timeout makes concurrent writers wait instead of failing.
 */
export class SqliteMemoryStorage implements MemoryStorage {
  readonly kind = 'sqlite';
  readonly #db: Database.Database;
  readonly #insert: Database.Statement;
  readonly #history: Database.Statement;
  readonly #insertVector: Database.Statement;
  readonly #indexText: Database.Statement;
  readonly #get: Database.Statement;
  /** Checkpoints the WAL off this thread (none for an in-memory database). */
  readonly #checkpointer: WalCheckpointer | undefined;

  constructor(options: SqliteMemoryStorageOptions) {
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.#db = new Database(options.path);
    // Takes effect only while the file is still empty: SQLite keeps a file's page size.
    this.#db.pragma(`page_size = ${options.pageSize ?? MEMORY_PAGE_SIZE}`);
    this.#db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    if (options.path !== ':memory:') {
      this.#db.pragma(`wal_autocheckpoint = ${WRITER_AUTOCHECKPOINT}`);
      this.#checkpointer = new WalCheckpointer(options.path, busyTimeoutMs);
    }
    this.#migrate();
    this.#insert = this.#db.prepare(
      `INSERT INTO memories (id, tenant_id, user_id, agent_id, session_id, text, metadata, tags, importance, created_at, updated_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#insertVector = this.#db.prepare(
      'INSERT OR REPLACE INTO memory_vectors (key, embedding) VALUES (?, ?)',
    );
    this.#indexText = this.#db.prepare(
      'INSERT INTO memories_fts (rowid, text) SELECT key, text FROM memories WHERE key BETWEEN ? AND ?',
    );
    this.#history = this.#db.prepare(
      'INSERT INTO memory_history (memory_id, memory_key, tenant_id, action, old, new, at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.#get = this.#db.prepare(`SELECT ${COLUMNS} FROM memories m WHERE m.id = ? AND m.tenant_id = ?`);
  }

  #migrate(): void {
    this.#db.exec('CREATE TABLE IF NOT EXISTS memory_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)');
    const migrate = this.#db.transaction(() => {
      const row = this.#db.prepare(`SELECT value FROM memory_meta WHERE name = 'schema_version'`).get() as
        | { value: string }
        | undefined;
      const version = row === undefined ? 0 : Number(row.value);
      for (let i = version; i < MIGRATIONS.length; i++) this.#db.exec(MIGRATIONS[i]!);
      this.#db
        .prepare(`INSERT OR REPLACE INTO memory_meta (name, value) VALUES ('schema_version', ?)`)
        .run(String(MIGRATIONS.length));
    });
    migrate.immediate();
  }

  async embedder(): Promise<EmbedderStamp | undefined> {
    const row = this.#db.prepare(`SELECT value FROM memory_meta WHERE name = 'embedder'`).get() as
      | { value: string }
      | undefined;
    return row === undefined ? undefined : (JSON.parse(row.value) as EmbedderStamp);
  }

  async setEmbedder(stamp: EmbedderStamp): Promise<void> {
    this.#db
      .prepare(`INSERT OR REPLACE INTO memory_meta (name, value) VALUES ('embedder', ?)`)
      .run(JSON.stringify(stamp));
  }

  async insert(items: { record: MemoryRecord; vector: Float32Array }[]): Promise<KeyedMemory[]> {
    this.#checkpointer?.settle();
    const run = this.#db.transaction(() => {
      const out: KeyedMemory[] = [];
      for (const { record, vector } of items) {
        const info = this.#insert.run(
          record.id,
          record.tenant_id,
          record.user_id,
          record.agent_id,
          record.session_id,
          record.text,
          JSON.stringify(record.metadata),
          JSON.stringify(record.tags),
          record.importance,
          record.created_at,
          record.updated_at,
          record.expires_at,
        );
        const key = Number(info.lastInsertRowid);
        this.#insertVector.run(key, blob(vector));
        this.#history.run(
          record.id,
          key,
          record.tenant_id,
          'add',
          null,
          snapshotJson(record),
          record.created_at,
        );
        out.push({ key, record });
      }
      // The write lock is held: the batch's keys are exactly first..last.
      if (out.length > 0) this.#indexText.run(out[0]!.key, out[out.length - 1]!.key);
      return out;
    });
    try {
      const stored = run.immediate();
      this.#checkpointer?.written(stored.length);
      return stored;
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE')
        throw new InvalidRequestError('a memory with this id already exists', { details: { field: 'id' } });
      throw err;
    }
  }

  async get(tenantId: string, id: string): Promise<KeyedMemory | undefined> {
    const row = this.#get.get(id, tenantId) as MemoryRow | undefined;
    return row === undefined ? undefined : { key: row.key, record: toRecord(row) };
  }

  async update(
    tenantId: string,
    id: string,
    patch: MemoryPatch,
    vector: Float32Array | undefined,
    now: number,
  ): Promise<KeyedMemory | undefined> {
    const run = this.#db.transaction((): KeyedMemory | undefined => {
      const row = this.#get.get(id, tenantId) as MemoryRow | undefined;
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
      this.#db
        .prepare(
          'UPDATE memories SET text = ?, metadata = ?, tags = ?, importance = ?, expires_at = ?, updated_at = ? WHERE key = ?',
        )
        .run(
          after.text,
          JSON.stringify(after.metadata),
          JSON.stringify(after.tags),
          after.importance,
          after.expires_at,
          after.updated_at,
          row.key,
        );
      if (vector !== undefined) this.#insertVector.run(row.key, blob(vector));
      this.#history.run(id, row.key, tenantId, 'update', snapshotJson(before), snapshotJson(after), now);
      return { key: row.key, record: after };
    });
    const updated = run.immediate();
    if (updated !== undefined) this.#checkpointer?.written(1);
    return updated;
  }

  async delete(tenantId: string, id: string, now: number): Promise<number | undefined> {
    const run = this.#db.transaction((): number | undefined => {
      const row = this.#get.get(id, tenantId) as MemoryRow | undefined;
      if (row === undefined) return undefined;
      this.#db.prepare('DELETE FROM memories WHERE key = ?').run(row.key);
      this.#history.run(id, row.key, tenantId, 'delete', snapshotJson(toRecord(row)), null, now);
      return row.key;
    });
    const deleted = run.immediate();
    if (deleted !== undefined) this.#checkpointer?.written(1);
    return deleted;
  }

  async list(query: ListQuery, now: number): Promise<Page<MemoryRecord>> {
    const where = compileFilter(query.tenant_id, query.filter, now);
    const params = [...where.params];
    let sql = `SELECT ${COLUMNS} FROM memories m WHERE ${where.sql}`;
    if (query.cursor !== undefined) {
      const after = Number.parseInt(query.cursor, 36);
      if (!Number.isSafeInteger(after) || after < 0)
        throw new InvalidRequestError('`cursor` is not a cursor this API returned', {
          details: { field: 'cursor' },
        });
      sql += ' AND m.key < ?';
      params.push(after);
    }
    sql += ' ORDER BY m.key DESC LIMIT ?';
    params.push(query.limit + 1);
    const rows = this.#db.prepare(sql).all(...params) as MemoryRow[];
    const more = rows.length > query.limit;
    if (more) rows.pop();
    return {
      items: rows.map(toRecord),
      next_cursor: more ? rows[rows.length - 1]!.key.toString(36) : null,
    };
  }

  async history(tenantId: string, id: string): Promise<MemoryHistoryEntry[]> {
    const rows = this.#db
      .prepare(
        'SELECT seq, memory_id, action, old, new, at FROM memory_history WHERE memory_id = ? AND tenant_id = ? ORDER BY seq',
      )
      .all(id, tenantId) as {
      seq: number;
      memory_id: string;
      action: MemoryHistoryEntry['action'];
      old: string | null;
      new: string | null;
      at: number;
    }[];
    return rows.map((row) => ({
      seq: row.seq,
      memory_id: row.memory_id,
      action: row.action,
      old: row.old === null ? null : (JSON.parse(row.old) as MemorySnapshot),
      new: row.new === null ? null : (JSON.parse(row.new) as MemorySnapshot),
      at: row.at,
    }));
  }

  async filterKeys(tenantId: string, filter: MemoryFilter | undefined, now: number): Promise<number[]> {
    const where = compileFilter(tenantId, filter, now);
    return this.#db
      .prepare(`SELECT m.key FROM memories m WHERE ${where.sql}`)
      .pluck()
      .all(...where.params) as number[];
  }

  async count(tenantId: string, filter: MemoryFilter | undefined, now: number): Promise<number> {
    const where = compileFilter(tenantId, filter, now);
    return this.#db
      .prepare(`SELECT count(*) FROM memories m WHERE ${where.sql}`)
      .pluck()
      .get(...where.params) as number;
  }

  async fulltext(
    tenantId: string,
    text: string,
    filter: MemoryFilter | undefined,
    limit: number,
    now: number,
  ): Promise<{ key: number; score: number }[]> {
    const match = matchExpression(text);
    if (match === undefined) return [];
    const where = compileFilter(tenantId, filter, now);
    const rows = this.#db
      .prepare(
        `SELECT m.key AS key, bm25(memories_fts) AS rank FROM memories_fts JOIN memories m ON m.key = memories_fts.rowid
         WHERE memories_fts MATCH ? AND ${where.sql} ORDER BY rank, m.key LIMIT ?`,
      )
      .all(match, ...where.params, limit) as { key: number; rank: number }[];
    return rows.map((row) => ({ key: row.key, score: -row.rank }));
  }

  async exact(
    tenantId: string,
    text: string,
    filter: MemoryFilter | undefined,
    limit: number,
    now: number,
  ): Promise<number[]> {
    const where = compileFilter(tenantId, filter, now);
    const needle = text.length === 0 ? '' : ' AND instr(lower(m.text), lower(?)) > 0';
    return this.#db
      .prepare(`SELECT m.key FROM memories m WHERE ${where.sql}${needle} ORDER BY m.key DESC LIMIT ?`)
      .pluck()
      .all(...where.params, ...(text.length === 0 ? [] : [text]), limit) as number[];
  }

  async byKeys(keys: number[]): Promise<Map<number, MemoryRecord>> {
    const out = new Map<number, MemoryRecord>();
    for (let i = 0; i < keys.length; i += 500) {
      const chunk = keys.slice(i, i + 500);
      const rows = this.#db
        .prepare(`SELECT ${COLUMNS} FROM memories m WHERE m.key IN (${chunk.map(() => '?').join(',')})`)
        .all(...chunk) as MemoryRow[];
      for (const row of rows) out.set(row.key, toRecord(row));
    }
    return out;
  }

  async *vectors(): AsyncIterable<IndexedVector[]> {
    const statement = this.#db.prepare(
      `SELECT m.key, m.tenant_id, m.text, m.expires_at, v.embedding FROM memories m JOIN memory_vectors v ON v.key = m.key
       WHERE m.key > ? ORDER BY m.key LIMIT 5000`,
    );
    let after = 0;
    for (;;) {
      const rows = statement.all(after) as {
        key: number;
        tenant_id: string;
        text: string;
        expires_at: number | null;
        embedding: Buffer;
      }[];
      if (rows.length === 0) return;
      after = rows[rows.length - 1]!.key;
      yield rows.map((row) => ({
        key: row.key,
        tenant_id: row.tenant_id,
        text: row.text,
        expires_at: row.expires_at,
        vector: fromBlob(row.embedding),
      }));
    }
  }

  async replaceVectors(batch: StoredVector[]): Promise<void> {
    const statement = this.#db.prepare('UPDATE memory_vectors SET embedding = ? WHERE key = ?');
    this.#db.transaction(() => {
      for (const item of batch) statement.run(blob(item.vector), item.key);
    })();
    this.#checkpointer?.written(batch.length);
  }

  async changesSince(afterSeq: number): Promise<MemoryChanges> {
    const rows = this.#db
      .prepare('SELECT memory_key, tenant_id FROM memory_history WHERE seq > ? GROUP BY memory_key')
      .all(afterSeq) as { memory_key: number; tenant_id: string }[];
    const seq =
      (this.#db.prepare('SELECT COALESCE(max(seq), 0) FROM memory_history').pluck().get() as number) ?? 0;
    return { keys: rows.map((row) => row.memory_key), tenants: rows.map((row) => row.tenant_id), seq };
  }

  async purgeExpired(now: number): Promise<{ key: number; tenant_id: string; text: string }[]> {
    const run = this.#db.transaction(() => {
      const rows = this.#db
        .prepare(`SELECT ${COLUMNS} FROM memories m WHERE m.expires_at IS NOT NULL AND m.expires_at <= ?`)
        .all(now) as MemoryRow[];
      const remove = this.#db.prepare('DELETE FROM memories WHERE key = ?');
      for (const row of rows) {
        remove.run(row.key);
        this.#history.run(row.id, row.key, row.tenant_id, 'delete', snapshotJson(toRecord(row)), null, now);
      }
      return rows.map((row) => ({ key: row.key, tenant_id: row.tenant_id, text: row.text }));
    });
    const purged = run.immediate();
    this.#checkpointer?.written(purged.length);
    return purged;
  }

  async vectorsByKeys(keys: number[]): Promise<Map<number, Float32Array>> {
    const out = new Map<number, Float32Array>();
    for (let i = 0; i < keys.length; i += 500) {
      const chunk = keys.slice(i, i + 500);
      const rows = this.#db
        .prepare(`SELECT key, embedding FROM memory_vectors WHERE key IN (${chunk.map(() => '?').join(',')})`)
        .all(...chunk) as { key: number; embedding: Buffer }[];
      for (const row of rows) out.set(row.key, fromBlob(row.embedding));
    }
    return out;
  }

  async close(): Promise<void> {
    await this.#checkpointer?.close();
    if (this.#db.open) this.#db.close();
  }
}
