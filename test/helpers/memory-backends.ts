import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import {
  type Embedder,
  HashingEmbedder,
  LongTermMemory,
  type LongTermMemoryOptions,
  memoryIndexPath,
  PostgresMemoryStorage,
  SqliteMemoryStorage,
} from '../../src/memory/index.js';
import { TEST_DATABASE_URL, uniqueSchema } from './postgres.js';

/** Where one memory store lives: reopening the same place is a restart. */
export interface MemoryPlace {
  /** Opens long-term memory on this place (again: a restart). */
  open(embedder?: Embedder, index?: LongTermMemoryOptions['index']): Promise<LongTermMemory>;
  /** Fails when any vector or full-text entry has no memory, or a memory lacks one. */
  assertNoOrphans(): Promise<void>;
}

/** A storage adapter under the contract suite. */
export interface MemoryBackend {
  name: string;
  /** A fresh, empty place. */
  place(): MemoryPlace;
  /** Removes every place this backend made. */
  cleanup(): Promise<void>;
}

const defaultEmbedder = () => new HashingEmbedder({ dimensions: 256 });

function sqliteBackend(): MemoryBackend {
  let dir: string | undefined;
  let files = 0;
  return {
    name: 'SqliteMemoryStorage',
    place() {
      dir ??= mkdtempSync(join(tmpdir(), 'agentd-memory-'));
      const path = join(dir, `m${files++}.db`);
      return {
        open: (embedder = defaultEmbedder(), index = {}) =>
          LongTermMemory.open({
            storage: new SqliteMemoryStorage({ path }),
            embedder,
            indexPath: memoryIndexPath(path),
            index,
          }),
        async assertNoOrphans() {
          const db = new Database(path);
          try {
            // FTS5 checks its index against the content table; it throws on any orphan or missing row.
            db.exec(`INSERT INTO memories_fts (memories_fts) VALUES ('integrity-check')`);
            const count = (sql: string) => db.prepare(sql).pluck().get() as number;
            const rows = count('SELECT count(*) FROM memories');
            assert.equal(count('SELECT count(*) FROM memories_fts'), rows);
            assert.equal(count('SELECT count(*) FROM memory_vectors'), rows);
            assert.equal(
              count(
                'SELECT count(*) FROM memory_vectors v LEFT JOIN memories m ON m.key = v.key WHERE m.key IS NULL',
              ),
              0,
            );
          } finally {
            db.close();
          }
        },
      };
    },
    async cleanup() {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresBackend(): MemoryBackend {
  const schemas: string[] = [];
  return {
    name: 'PostgresMemoryStorage',
    place() {
      const schema = uniqueSchema('agentd_memory');
      schemas.push(schema);
      return {
        open: async (embedder = defaultEmbedder(), index = {}) =>
          LongTermMemory.open({
            storage: await PostgresMemoryStorage.open({ url: TEST_DATABASE_URL, schema, poolSize: 4 }),
            embedder,
            index,
            shared: true,
          }),
        async assertNoOrphans() {
          const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
          await client.connect();
          try {
            const count = async (sql: string) => Number((await client.query(sql)).rows[0].count);
            const rows = await count(`SELECT count(*) FROM ${schema}.memories`);
            assert.equal(await count(`SELECT count(*) FROM ${schema}.memory_vectors`), rows);
            // The full-text entry is a generated column: it always matches the text it came from.
            assert.equal(
              await count(
                `SELECT count(*) FROM ${schema}.memories WHERE search IS DISTINCT FROM to_tsvector('${schema}.agentd_memory', text)`,
              ),
              0,
            );
          } finally {
            await client.end();
          }
        },
      };
    },
    async cleanup() {
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await client.connect();
      try {
        for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

/** Both adapters: every memory test that is not about one adapter's internals runs on each. */
export function memoryBackends(): MemoryBackend[] {
  return [sqliteBackend(), postgresBackend()];
}
