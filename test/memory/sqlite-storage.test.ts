import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
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
