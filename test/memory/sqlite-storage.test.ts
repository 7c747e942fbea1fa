import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { HashingEmbedder, LongTermMemory, SqliteMemoryStorage } from '../../src/memory/index.js';

const dir = mkdtempSync(join(tmpdir(), 'agentd-sqlite-memory-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const open = (path: string) =>
  LongTermMemory.open({
    storage: new SqliteMemoryStorage({ path }),
    embedder: new HashingEmbedder({ dimensions: 64 }),
  });

/** Fails unless FTS5 holds exactly one entry per memory, each matching its row. */
function assertFullTextInStep(path: string): void {
  const db = new Database(path);
  try {
    db.exec(`INSERT INTO memories_fts (memories_fts) VALUES ('integrity-check')`);
    const count = (sql: string) => db.prepare(sql).pluck().get() as number;
    assert.equal(count('SELECT count(*) FROM memories_fts'), count('SELECT count(*) FROM memories'));
  } finally {
    db.close();
  }
}

describe('SqliteMemoryStorage', () => {
  // The WAL is checkpointed by a worker thread, not by the writer's commits (whose own automatic
  // checkpoint only starts at 10,000 pages): batched adds still keep it to about a batch, and
  // closing stops the worker and leaves no WAL behind.
  it('keeps the WAL small under batched adds, checkpointed off the writing thread', async () => {
    const path = join(dir, 'wal.db');
    const memory = await open(path);
    const batch = 500;
    for (let b = 0; b < 16; b++)
      await memory.add(
        { tenant_id: 't' },
        Array.from({ length: batch }, (_, i) => ({
          text: `note ${b} ${i}`,
          embedding: new Float32Array(64).fill(i),
        })),
      );
    const walBytes = statSync(`${path}-wal`).size;
    // 8,000 memories write over 8 MB of WAL: without checkpoints it would hold all of it.
    assert.ok(walBytes < 4_000_000, `WAL of ${walBytes} bytes`);
    await memory.close();
    assert.equal(existsSync(`${path}-wal`), false);
    const reopened = await open(path);
    assert.equal(reopened.size, 16 * batch);
    await reopened.close();
  });

  it('indexes every memory of a batch for full-text search, after earlier batches and deletes', async () => {
    const path = join(dir, 'batches.db');
    const memory = await open(path);
    const first = await memory.add(
      { tenant_id: 't' },
      Array.from({ length: 40 }, (_, i) => ({ text: `first batch note ${i} about kayaks` })),
    );
    await memory.delete('t', first[39]!.id);
    await memory.add(
      { tenant_id: 't' },
      Array.from({ length: 25 }, (_, i) => ({ text: `second batch note ${i} about lanterns` })),
    );
    const kayaks = await memory.search({ tenant_id: 't', text: 'kayaks', mode: 'fulltext', top_k: 100 });
    const lanterns = await memory.search({ tenant_id: 't', text: 'lanterns', mode: 'fulltext', top_k: 100 });
    assert.equal(kayaks.hits.length, 39);
    assert.equal(lanterns.hits.length, 25);
    await memory.close();
    assertFullTextInStep(path);
  });

  it('upgrades a store whose full-text index was fed by a per-row trigger, without double entries', async () => {
    const path = join(dir, 'upgrade.db');
    const before = await open(path);
    await before.add({ tenant_id: 't' }, [{ text: 'an old memory about owls' }]);
    await before.close();
    // Back to schema 1: the insert trigger of that version.
    const db = new Database(path);
    db.exec(`CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
      INSERT INTO memories_fts (rowid, text) VALUES (new.key, new.text);
    END;
    UPDATE memory_meta SET value = '1' WHERE name = 'schema_version';`);
    db.close();

    const memory = await open(path);
    await memory.add({ tenant_id: 't' }, [{ text: 'a new memory about owls' }, { text: 'and one on moths' }]);
    const owls = await memory.search({ tenant_id: 't', text: 'owls', mode: 'fulltext' });
    assert.equal(owls.hits.length, 2);
    await memory.close();
    assertFullTextInStep(path);
    const check = new Database(path);
    const triggers = check
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND name = 'memories_fts_insert'`)
      .all();
    check.close();
    assert.deepEqual(triggers, []);
  });
});
