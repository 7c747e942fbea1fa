import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { AgentdError } from '../../src/errors.js';
import { MockLlmServer } from '../../src/llm/index.js';
import {
  HashingEmbedder,
  LongTermMemory,
  memoryIndexPath,
  OpenAiEmbedder,
  SqliteMemoryStorage,
} from '../../src/memory/index.js';

const dir = mkdtempSync(join(tmpdir(), 'agentd-memory-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

function open(
  path = ':memory:',
  embedder = new HashingEmbedder({ dimensions: 256 }),
  hnswThreshold?: number,
) {
  return LongTermMemory.open({
    storage: new SqliteMemoryStorage({ path }),
    embedder,
    indexPath: memoryIndexPath(path),
    index: hnswThreshold === undefined ? {} : { hnswThreshold, exactThreshold: 0 },
  });
}

const T = { tenant_id: 'acme' };

/** FTS5 checks its index against the content table; it throws on any orphan or missing row. */
function assertFtsConsistent(path: string): void {
  const db = new Database(path);
  try {
    db.exec(`INSERT INTO memories_fts (memories_fts) VALUES ('integrity-check')`);
    const rows = db.prepare('SELECT count(*) FROM memories').pluck().get() as number;
    const fts = db.prepare('SELECT count(*) FROM memories_fts').pluck().get() as number;
    assert.equal(fts, rows);
  } finally {
    db.close();
  }
}

describe('long-term memory', () => {
  it('adds, gets, updates with a new vector, deletes everything, and keeps the history', async () => {
    const path = join(dir, `m${files++}.db`);
    const memory = await open(path);
    const [added] = await memory.add(T, [
      { text: 'Ada prefers green tea in the morning', user_id: 'ada', tags: ['drinks'], metadata: { a: 1 } },
    ]);
    assert.ok(added);
    assert.equal(added.user_id, 'ada');
    assert.deepEqual((await memory.get('acme', added.id))?.text, added.text);

    const updated = await memory.update('acme', added.id, {
      text: 'Ada switched to black coffee',
      importance: 0.9,
    });
    assert.equal(updated?.text, 'Ada switched to black coffee');
    assert.equal(updated?.importance, 0.9);
    // The stored vector is the new text's: semantic search for the new words ranks it first with
    // the score the new text's own vector gives, and the old words no longer match it by text.
    const embedder = new HashingEmbedder({ dimensions: 256 });
    const hit = await memory.search({ tenant_id: 'acme', text: 'black coffee', mode: 'semantic', top_k: 1 });
    const expected = embedder.embedDocument('Ada switched to black coffee');
    const query = await memory.embedder.embedQuery('black coffee');
    let dot = 0;
    for (let i = 0; i < expected.length; i++) dot += expected[i]! * query[i]!;
    assert.equal(hit.hits[0]?.memory.id, added.id);
    assert.ok(Math.abs(hit.hits[0]!.score - dot) < 1e-3);
    const stale = await memory.search({ tenant_id: 'acme', text: 'green tea', mode: 'fulltext' });
    assert.equal(stale.hits.length, 0);

    assert.equal(await memory.delete('acme', added.id), true);
    assert.equal(await memory.delete('acme', added.id), false);
    assert.equal(await memory.get('acme', added.id), undefined);
    for (const mode of ['fulltext', 'semantic', 'hybrid'] as const) {
      const result = await memory.search({ tenant_id: 'acme', text: 'black coffee Ada', mode });
      assert.equal(result.hits.length, 0, mode);
    }
    assert.equal(memory.size, 0);

    const history = await memory.history('acme', added.id);
    assert.deepEqual(
      history.map((h) => h.action),
      ['add', 'update', 'delete'],
    );
    assert.equal(history[1]!.old?.text, 'Ada prefers green tea in the morning');
    assert.equal(history[1]!.new?.text, 'Ada switched to black coffee');
    assert.equal(history[2]!.new, null);
    await memory.close();
    assertFtsConsistent(path);
  });

  it('enforces the tenant on every operation', async () => {
    const memory = await open();
    const [mine] = await memory.add(T, [{ text: 'secret plan of acme' }]);
    assert.equal(await memory.get('other', mine!.id), undefined);
    assert.equal(await memory.update('other', mine!.id, { text: 'hijacked' }), undefined);
    assert.equal(await memory.delete('other', mine!.id), false);
    assert.deepEqual(await memory.history('other', mine!.id), []);
    for (const mode of ['exact', 'fulltext', 'semantic', 'hybrid'] as const) {
      const result = await memory.search({ tenant_id: 'other', text: 'secret plan', mode });
      assert.equal(result.hits.length, 0, mode);
    }
    assert.equal((await memory.list({ tenant_id: 'other', limit: 10 })).items.length, 0);
    assert.equal((await memory.get('acme', mine!.id))?.text, 'secret plan of acme');
    await memory.close();
  });

  it('lists every memory through cursor pages, newest first, with no silent cap', async () => {
    const memory = await open();
    const added = await memory.add(
      T,
      Array.from({ length: 25 }, (_, i) => ({ text: `memory number ${i}` })),
    );
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await memory.list({ tenant_id: 'acme', limit: 10, cursor });
      seen.push(...page.items.map((m) => m.id));
      cursor = page.next_cursor ?? undefined;
      pages++;
    } while (cursor !== undefined);
    assert.equal(pages, 3);
    assert.deepEqual(seen, added.map((m) => m.id).reverse());
    await assert.rejects(memory.list({ tenant_id: 'acme', limit: 10, cursor: '!!' }), /cursor/);
    await memory.close();
  });

  it('rejects a whole batch when one item is invalid, naming the field', async () => {
    const memory = await open();
    await assert.rejects(
      memory.add(T, [{ text: 'fine' }, { text: '' }]),
      (err: AgentdError) => err.status === 400 && err.details?.field === 'memories[1].text',
    );
    await assert.rejects(
      memory.add(T, [{ text: 'x', importance: 2 }]),
      (err: AgentdError) => err.details?.field === 'importance',
    );
    await assert.rejects(
      memory.add(T, [{ text: 'x', embedding: [1, 2, 3] }]),
      (err: AgentdError) => err.details?.field === 'embedding',
    );
    assert.equal(memory.size, 0);
    await memory.close();
  });

  it('hides and purges expired memories, recording the purge', async () => {
    const memory = await open();
    const [gone, kept] = await memory.add(T, [
      { text: 'a fleeting thought about lunch', expires_at: Date.now() - 1 },
      { text: 'a lasting thought about lunch' },
    ]);
    assert.equal(await memory.get('acme', gone!.id), undefined);
    const result = await memory.search({ tenant_id: 'acme', text: 'thought lunch', mode: 'semantic' });
    assert.deepEqual(
      result.hits.map((h) => h.memory.id),
      [kept!.id],
    );
    assert.equal(await memory.purgeExpired(), 1);
    assert.equal(memory.size, 1);
    assert.equal((await memory.history('acme', gone!.id)).at(-1)?.action, 'delete');
    await memory.close();
  });

  it('keeps everything across a restart, and the HNSW index catches up on changes after its save', async () => {
    const path = join(dir, `m${files++}.db`);
    const first = await open(path, undefined, 0);
    const items = Array.from({ length: 40 }, (_, i) => ({
      text: `note ${i} about topic ${i % 7}`,
      user_id: 'u',
    }));
    const added = await first.add(T, items);
    await first.close(); // saves the HNSW index

    const second = await open(path, undefined, 0);
    assert.equal(second.size, 40);
    const [late] = await second.add(T, [{ text: 'a zebra crossed the river' }]);
    await second.delete('acme', added[0]!.id);
    await second.storage.close(); // a crash: the index file still reflects the first run

    const third = await open(path, undefined, 0);
    assert.equal(third.size, 40);
    const result = await third.search({ tenant_id: 'acme', text: 'zebra river', mode: 'semantic', top_k: 1 });
    assert.equal(result.strategy, 'hnsw');
    assert.equal(result.hits[0]?.memory.id, late!.id);
    const all = await third.search({ tenant_id: 'acme', text: 'note topic', mode: 'semantic', top_k: 100 });
    assert.equal(all.hits.length, 40);
    assert.ok(!all.hits.some((h) => h.memory.id === added[0]!.id));
    assert.equal((await third.get('acme', added[5]!.id))?.text, items[5]!.text);
    await third.close();
    assertFtsConsistent(path);
  });

  it('refuses vector work after an embedder switch until re-indexed', async () => {
    const path = join(dir, `m${files++}.db`);
    const first = await open(path, new HashingEmbedder({ dimensions: 64 }));
    await first.add(T, [{ text: 'the cat sat on the mat' }, { text: 'quarterly revenue grew' }]);
    await first.close();

    const second = await open(path, new HashingEmbedder({ dimensions: 128 }));
    assert.equal(second.embedderMismatch?.dimensions, 64);
    await assert.rejects(second.add(T, [{ text: 'more' }]), (err: AgentdError) => err.status === 409);
    await assert.rejects(
      second.search({ tenant_id: 'acme', text: 'cat', mode: 'semantic' }),
      (err: AgentdError) => err.status === 409,
    );
    const fulltext = await second.search({ tenant_id: 'acme', text: 'cat' });
    assert.equal(fulltext.mode, 'fulltext');
    assert.equal(fulltext.hits.length, 1);
    assert.equal(await second.reindex(new HashingEmbedder({ dimensions: 128 })), 2);
    const semantic = await second.search({ tenant_id: 'acme', text: 'cat mat', mode: 'semantic', top_k: 1 });
    assert.equal(semantic.hits[0]?.memory.text, 'the cat sat on the mat');
    await second.close();
    const third = await open(path, new HashingEmbedder({ dimensions: 128 }));
    assert.equal(third.embedderMismatch, undefined);
    await third.close();
  });
});

describe('OpenAI-compatible embedder', () => {
  it('batches, caches by content, and rejects a dimension mismatch', async () => {
    const mock = await MockLlmServer.start();
    try {
      const embedder = new OpenAiEmbedder({
        baseUrl: `${mock.url}`,
        model: 'embed-a',
        dimensions: 384,
        batchSize: 2,
      });
      const vectors = await embedder.embedDocuments(['one', 'two', 'three']);
      assert.equal(vectors.length, 3);
      assert.equal(vectors[0]!.length, 384);
      await embedder.embedDocuments(['one', 'two', 'three']);
      const stats = (await (await fetch(`${mock.url.replace(/\/v1$/, '')}/mock/stats`)).json()) as {
        requests: Record<string, number>;
      };
      assert.equal(stats.requests['embed-a'], 2); // two batches, then all from the cache

      const wrong = new OpenAiEmbedder({ baseUrl: `${mock.url}`, model: 'embed-b?dims=8', dimensions: 384 });
      await assert.rejects(wrong.embedQuery('x'), /returned 8 dimensions/);

      const flaky = new OpenAiEmbedder({
        baseUrl: `${mock.url}`,
        model: 'embed-c?fault=500&times=2',
        dimensions: 384,
      });
      assert.equal((await flaky.embedQuery('retried')).length, 384);
    } finally {
      await mock.close();
    }
  });
});
