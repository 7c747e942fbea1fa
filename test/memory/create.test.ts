import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { loadConfig } from '../../src/config/index.js';
import { createLongTermMemory, memoryPath, SqliteMemoryStorage } from '../../src/memory/index.js';
import { SqliteStore } from '../../src/store/index.js';

const dir = mkdtempSync(join(tmpdir(), 'agentd-memory-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function configFor(path: string, memory: Record<string, unknown> = {}) {
  return loadConfig({
    config: { storage: { path }, memory: { embedder: { kind: 'hashing', dimensions: 64 }, ...memory } },
    env: {},
    cwd: dir,
  }).config;
}

function pageSize(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.pragma('page_size', { simple: true }) as number;
  } finally {
    db.close();
  }
}

function hasMemoryTables(path: string): boolean {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'memories'`).get() !== undefined;
  } finally {
    db.close();
  }
}

async function addOne(path: string, memory: Record<string, unknown> = {}, text = 'likes green tea') {
  const config = configFor(path, memory);
  const store = new SqliteStore({ path });
  const longTerm = await createLongTermMemory({ config: config.memory, storage: config.storage, env: {} });
  try {
    await longTerm.add({ tenant_id: 't' }, [{ text }]);
    return (await longTerm.list({ tenant_id: 't', limit: 10 })).items.map((m) => m.text).sort();
  } finally {
    await longTerm.close();
    await store.close();
  }
}

describe('the SQLite file of memories', () => {
  it('is a file of its own beside the task store by default, with 16 KB pages', async () => {
    const tasks = join(dir, 'fresh', 'agentd.db');
    assert.deepEqual(await addOne(tasks), ['likes green tea']);
    const memories = join(dir, 'fresh', 'agentd-memory.db');
    assert.equal(memoryPath(configFor(tasks).memory, tasks), memories);
    assert.equal(pageSize(memories), 16_384);
    assert.equal(pageSize(tasks), 4096);
    assert.equal(hasMemoryTables(tasks), false);
    // Reopened: the same file, the memory is still there.
    assert.deepEqual(await addOne(tasks, {}, 'walks the dog'), ['likes green tea', 'walks the dog']);
  });

  it('stays in the task store file when that file already holds memories', async () => {
    const tasks = join(dir, 'existing', 'agentd.db');
    // A store from before: the memory tables were created in the task store's file.
    await new SqliteMemoryStorage({ path: tasks, pageSize: 4096 }).close();
    assert.equal(memoryPath(configFor(tasks).memory, tasks), tasks);
    assert.deepEqual(await addOne(tasks), ['likes green tea']);
    assert.deepEqual(await addOne(tasks, {}, 'walks the dog'), ['likes green tea', 'walks the dog']);
    assert.equal(existsSync(join(dir, 'existing', 'agentd-memory.db')), false);
    assert.equal(pageSize(tasks), 4096);
  });

  it('is `memory.path` when set, also when that is the task store file', async () => {
    const tasks = join(dir, 'explicit', 'agentd.db');
    const own = join(dir, 'explicit', 'memories.db');
    assert.equal(memoryPath(configFor(tasks, { path: own }).memory, tasks), own);
    assert.deepEqual(await addOne(tasks, { path: tasks }), ['likes green tea']);
    assert.equal(hasMemoryTables(tasks), true);
    assert.equal(pageSize(tasks), 4096);
    assert.equal(existsSync(join(dir, 'explicit', 'agentd-memory.db')), false);
  });

  it('is in memory when the task store is', () => {
    assert.equal(memoryPath(configFor(':memory:').memory, ':memory:'), ':memory:');
  });
});
