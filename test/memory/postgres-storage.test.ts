import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { AgentdError } from '../../src/errors.js';
import { HashingEmbedder, LongTermMemory, PostgresMemoryStorage } from '../../src/memory/index.js';
import { openTestPostgres, TEST_DATABASE_URL, uniqueSchema } from '../helpers/postgres.js';

const T = { tenant_id: 'acme' };
const schemas: string[] = [];
const opened: { close(): Promise<void> }[] = [];

function freshSchema(): string {
  const schema = uniqueSchema('agentd_pgmem');
  schemas.push(schema);
  return schema;
}

async function node(schema: string): Promise<LongTermMemory> {
  const memory = await LongTermMemory.open({
    storage: await PostgresMemoryStorage.open({ url: TEST_DATABASE_URL, schema, poolSize: 3 }),
    embedder: new HashingEmbedder({ dimensions: 128 }),
    shared: true,
  });
  opened.push(memory);
  return memory;
}

after(async () => {
  for (const memory of opened) await memory.close().catch(() => {});
  for (const schema of schemas) {
    const dropper = await PostgresMemoryStorage.open({ url: TEST_DATABASE_URL, schema, poolSize: 1 });
    await dropper.dropSchema();
    await dropper.close();
  }
});

describe('Postgres memory storage', () => {
  it('migrates once when several nodes open the same schema at the same time', async () => {
    const schema = freshSchema();
    const storages = await Promise.all(
      Array.from({ length: 4 }, () =>
        PostgresMemoryStorage.open({ url: TEST_DATABASE_URL, schema, poolSize: 1 }),
      ),
    );
    await storages[0]!.setEmbedder({ name: 'hashing', dimensions: 128 });
    for (const storage of storages)
      assert.deepEqual(await storage.embedder(), { name: 'hashing', dimensions: 128 });
    await Promise.all(storages.map((storage) => storage.close()));
  });

  it('shares a schema with the task store, both migrating at once', async () => {
    const schema = freshSchema();
    const [tasks, memories] = await Promise.all([
      openTestPostgres({ schema }),
      PostgresMemoryStorage.open({ url: TEST_DATABASE_URL, schema, poolSize: 1 }),
    ]);
    assert.equal((await memories.changesSince(0)).seq, 0);
    assert.equal(await tasks.store.getTask('none'), undefined);
    await memories.close();
    await tasks.store.close();
  });

  it('lets a node search what another node added, and see its updates and deletes', async () => {
    const schema = freshSchema();
    const a = await node(schema);
    const b = await node(schema);
    const [added] = await a.add(T, [{ text: 'the ferry to the island leaves at nine', user_id: 'u1' }]);
    for (const mode of ['semantic', 'hybrid', 'fulltext'] as const) {
      const found = await b.search({
        tenant_id: 'acme',
        text: 'ferry island',
        mode,
        filter: { user_id: 'u1' },
      });
      assert.deepEqual(
        found.hits.map((h) => h.memory.id),
        [added!.id],
        mode,
      );
    }
    assert.equal(b.size, 1);

    await b.update('acme', added!.id, { text: 'the train to the city leaves at ten' });
    const moved = await a.search({ tenant_id: 'acme', text: 'train city', mode: 'semantic', top_k: 1 });
    assert.equal(moved.hits[0]?.memory.text, 'the train to the city leaves at ten');
    // A's index holds the vector of the new text (the score is the new text's cosine).
    const expected = new HashingEmbedder({ dimensions: 128 }).embedDocument(
      'the train to the city leaves at ten',
    );
    const query = await a.embedder.embedQuery('train city');
    let dot = 0;
    for (let i = 0; i < expected.length; i++) dot += expected[i]! * query[i]!;
    assert.ok(Math.abs(moved.hits[0]!.score - dot) < 1e-2);

    assert.equal(await b.delete('acme', added!.id), true);
    const gone = await a.search({ tenant_id: 'acme', text: 'train city', mode: 'semantic' });
    assert.equal(gone.hits.length, 0);
    assert.equal(a.size, 0);

    // A tenant that owns the whole index searches without a filter; another node's write for
    // another tenant must end that shortcut on this node.
    await a.add(T, [{ text: 'acme keeps its secrets' }]);
    await a.search({ tenant_id: 'acme', text: 'secrets', mode: 'semantic' });
    await b.add({ tenant_id: 'other' }, [{ text: 'other keeps its secrets too' }]);
    const mine = await a.search({ tenant_id: 'acme', text: 'secrets', mode: 'semantic', top_k: 10 });
    assert.deepEqual(
      mine.hits.map((h) => h.memory.tenant_id),
      ['acme'],
    );
    // Expiry purged by one node leaves the other's index too.
    const [brief] = await b.add(T, [{ text: 'a brief note on ferries', expires_at: Date.now() + 50 }]);
    await a.search({ tenant_id: 'acme', text: 'ferries', mode: 'semantic' });
    assert.equal(a.size, 3);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(await b.purgeExpired(), 1);
    await a.search({ tenant_id: 'acme', text: 'ferries', mode: 'semantic' });
    assert.equal(a.size, 2);
    assert.equal((await a.history('acme', brief!.id)).at(-1)?.action, 'delete');
  });

  it('indexes a memory once when a node updates it before catching up on its add', async () => {
    const schema = freshSchema();
    const a = await node(schema);
    const b = await node(schema);
    const [added] = await a.add(T, [{ text: 'the first draft of the plan' }]);
    await b.update('acme', added!.id, { text: 'the final version of the plan' });
    assert.equal(b.size, 1);
    const found = await b.search({ tenant_id: 'acme', text: 'final version', mode: 'semantic' });
    assert.deepEqual(
      found.hits.map((h) => h.memory.text),
      ['the final version of the plan'],
    );
    assert.equal(b.size, 1);
    await b.add({ tenant_id: 'other' }, [{ text: 'the final version of their plan' }]);
    const mine = await b.search({ tenant_id: 'acme', text: 'final version plan', mode: 'semantic' });
    assert.deepEqual(
      mine.hits.map((h) => h.memory.tenant_id),
      ['acme'],
    );
  });

  it('catches up on more changes than one read carries', async () => {
    const schema = freshSchema();
    const a = await node(schema);
    const b = await node(schema);
    const texts = Array.from({ length: 5050 }, (_, i) => ({ text: `bulk fact ${i}` }));
    for (let i = 0; i < texts.length; i += 1000) await a.add(T, texts.slice(i, i + 1000));
    const [last] = await a.add(T, [{ text: 'the very last zebra fact' }]);
    const found = await b.search({ tenant_id: 'acme', text: 'last zebra', mode: 'semantic', top_k: 1 });
    assert.equal(found.hits[0]?.memory.id, last!.id);
    assert.equal(b.size, 5051);
  });

  it('numbers history in commit order, so a reader that polls during concurrent writes misses nothing', async () => {
    const schema = freshSchema();
    const writers = await Promise.all([node(schema), node(schema), node(schema)]);
    const storage = await PostgresMemoryStorage.open({ url: TEST_DATABASE_URL, schema, poolSize: 1 });
    opened.push(storage);
    const seen = new Set<number>();
    let seq = 0;
    let writing = true;
    const reader = (async () => {
      while (writing) {
        const changes = await storage.changesSince(seq);
        for (const key of changes.keys) seen.add(key);
        seq = changes.seq;
      }
    })();
    const added = (
      await Promise.all(
        writers.map(async (writer, w) => {
          const out = [];
          for (let i = 0; i < 15; i++)
            out.push(...(await writer.add(T, [{ text: `writer ${w} item ${i}` }])));
          return out;
        }),
      )
    ).flat();
    writing = false;
    await reader;
    for (const key of (await storage.changesSince(seq)).keys) seen.add(key);
    assert.equal(seen.size, 45);
    const records = await storage.byKeys([...seen]);
    assert.deepEqual([...records.values()].map((m) => m.id).sort(), added.map((m) => m.id).sort());
    // Every node, caught up, holds every vector.
    for (const writer of writers) {
      await writer.search({ tenant_id: 'acme', text: 'item', mode: 'semantic' });
      assert.equal(writer.size, 45);
    }
  });

  it('refuses text Postgres cannot store with a 400, storing nothing', async () => {
    const memory = await node(freshSchema());
    await assert.rejects(
      memory.add(T, [{ text: 'fine' }, { text: 'nul \u0000 inside' }]),
      (err: AgentdError) => err.status === 400,
    );
    assert.equal((await memory.list({ tenant_id: 'acme', limit: 10 })).items.length, 0);
    assert.equal(memory.size, 0);
  });
});
