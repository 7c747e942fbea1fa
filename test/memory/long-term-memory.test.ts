import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { AgentdError } from '../../src/errors.js';
import { MockLlmServer } from '../../src/llm/index.js';
import { HashingEmbedder, OpenAiEmbedder } from '../../src/memory/index.js';
import { BLOCK_ROWS } from '../../src/memory/vector-arena.js';
import { memoryBackends } from '../helpers/memory-backends.js';

const T = { tenant_id: 'acme' };
const backends = memoryBackends();
after(async () => {
  for (const backend of backends) await backend.cleanup();
});

for (const backend of backends) {
  describe(`long-term memory contract: ${backend.name}`, () => {
    it('adds, gets, updates with a new vector, deletes everything, and keeps the history', async () => {
      const place = backend.place();
      const memory = await place.open();
      const [added] = await memory.add(T, [
        {
          text: 'Ada prefers green tea in the morning',
          user_id: 'ada',
          tags: ['drinks'],
          metadata: { a: 1 },
        },
      ]);
      assert.ok(added);
      assert.equal(added.user_id, 'ada');
      assert.deepEqual(await memory.get('acme', added.id), added);

      const updated = await memory.update('acme', added.id, {
        text: 'Ada switched to black coffee',
        importance: 0.9,
      });
      assert.equal(updated?.text, 'Ada switched to black coffee');
      assert.equal(updated?.importance, 0.9);
      assert.deepEqual(await memory.get('acme', added.id), updated);
      // The stored vector is the new text's: semantic search for the new words ranks it first with
      // the score the new text's own vector gives, and the old words no longer match it by text.
      const embedder = new HashingEmbedder({ dimensions: 256 });
      const hit = await memory.search({
        tenant_id: 'acme',
        text: 'black coffee',
        mode: 'semantic',
        top_k: 1,
      });
      const expected = embedder.embedDocument('Ada switched to black coffee');
      const query = await memory.embedder.embedQuery('black coffee');
      let dot = 0;
      for (let i = 0; i < expected.length; i++) dot += expected[i]! * query[i]!;
      assert.equal(hit.hits[0]?.memory.id, added.id);
      assert.ok(Math.abs(hit.hits[0]!.score - dot) < 1e-3);
      const stale = await memory.search({ tenant_id: 'acme', text: 'green tea', mode: 'fulltext' });
      assert.equal(stale.hits.length, 0);
      await place.assertNoOrphans();

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
      assert.ok(history[0]!.seq < history[1]!.seq && history[1]!.seq < history[2]!.seq);
      assert.equal(history[0]!.old, null);
      assert.deepEqual(history[0]!.new?.metadata, { a: 1 });
      assert.equal(history[1]!.old?.text, 'Ada prefers green tea in the morning');
      assert.equal(history[1]!.new?.text, 'Ada switched to black coffee');
      assert.equal(history[1]!.new?.importance, 0.9);
      assert.equal(history[2]!.old?.text, 'Ada switched to black coffee');
      assert.equal(history[2]!.new, null);
      await memory.close();
      await place.assertNoOrphans();
    });

    it('leaves no orphaned vector or full-text entry after many updates and deletes', async () => {
      const place = backend.place();
      const memory = await place.open();
      const added = await memory.add(
        T,
        Array.from({ length: 30 }, (_, i) => ({ text: `fact ${i} about gardening`, tags: [`t${i % 3}`] })),
      );
      for (const [i, m] of added.entries()) {
        if (i % 3 === 0) await memory.delete('acme', m.id);
        else if (i % 3 === 1) await memory.update('acme', m.id, { text: `revised fact ${i} about sailing` });
        else await memory.update('acme', m.id, { tags: ['kept'], metadata: { i } });
      }
      assert.equal(memory.size, 20);
      const sailing = await memory.search({
        tenant_id: 'acme',
        text: 'sailing',
        mode: 'fulltext',
        top_k: 100,
      });
      assert.equal(sailing.hits.length, 10);
      const gardening = await memory.search({
        tenant_id: 'acme',
        text: 'gardening',
        mode: 'fulltext',
        top_k: 100,
      });
      assert.deepEqual(
        gardening.hits.map((h) => h.memory.id).sort(),
        added
          .filter((_, i) => i % 3 === 2)
          .map((m) => m.id)
          .sort(),
      );
      const semantic = await memory.search({ tenant_id: 'acme', text: 'fact', mode: 'semantic', top_k: 100 });
      assert.equal(semantic.hits.length, 20);
      await memory.close();
      await place.assertNoOrphans();
    });

    it('enforces the tenant on every operation', async () => {
      const memory = await backend.place().open();
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
      // The same id may exist in two tenants; each sees its own.
      const [theirs] = await memory.add({ tenant_id: 'other' }, [{ id: mine!.id, text: 'their plan' }]);
      assert.equal((await memory.get('other', theirs!.id))?.text, 'their plan');
      assert.equal((await memory.get('acme', mine!.id))?.text, 'secret plan of acme');
      await assert.rejects(
        memory.add(T, [{ id: mine!.id, text: 'again' }]),
        (err: AgentdError) => err.status === 400 && err.details?.field === 'id',
      );
      await memory.close();
    });

    it('lists every memory through cursor pages, newest first, with no silent cap', async () => {
      const memory = await backend.place().open();
      const added = await memory.add(
        T,
        Array.from({ length: 25 }, (_, i) => ({
          text: `memory number ${i}`,
          user_id: i % 2 === 0 ? 'even' : 'odd',
        })),
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
      const even: string[] = [];
      cursor = undefined;
      do {
        const page = await memory.list({ tenant_id: 'acme', filter: { user_id: 'even' }, limit: 4, cursor });
        even.push(...page.items.map((m) => m.id));
        cursor = page.next_cursor ?? undefined;
      } while (cursor !== undefined);
      assert.deepEqual(
        even,
        added
          .filter((_, i) => i % 2 === 0)
          .map((m) => m.id)
          .reverse(),
      );
      await assert.rejects(memory.list({ tenant_id: 'acme', limit: 10, cursor: '!!' }), /cursor/);
      await memory.close();
    });

    it('ranks full-text matches by relevance, matches stemmed words, and honours min_score', async () => {
      const memory = await backend.place().open();
      const [both, one, none, stop] = await memory.add(T, [
        { text: 'the espresso machine and the espresso beans' },
        { text: 'a new espresso cup' },
        { text: 'weather report for tomorrow' },
        { text: 'to be or not to be' },
      ]);
      const result = await memory.search({ tenant_id: 'acme', text: 'espresso beans', mode: 'fulltext' });
      assert.deepEqual(
        result.hits.map((h) => h.memory.id),
        [both!.id, one!.id],
      );
      assert.ok(result.hits[0]!.score > result.hits[1]!.score);
      assert.equal(result.hits[0]!.scores.fulltext?.rank, 1);
      // Stemming: "machines" finds "machine".
      const stemmed = await memory.search({ tenant_id: 'acme', text: 'machines', mode: 'fulltext' });
      assert.deepEqual(
        stemmed.hits.map((h) => h.memory.id),
        [both!.id],
      );
      // A query of function words only still matches them.
      const words = await memory.search({ tenant_id: 'acme', text: 'not to be', mode: 'fulltext' });
      assert.deepEqual(
        words.hits.map((h) => h.memory.id),
        [stop!.id],
      );
      const high = await memory.search({
        tenant_id: 'acme',
        text: 'espresso beans',
        mode: 'fulltext',
        min_score: (result.hits[0]!.score + result.hits[1]!.score) / 2,
      });
      assert.deepEqual(
        high.hits.map((h) => h.memory.id),
        [both!.id],
      );
      // Query syntax never leaks: operators and quotes are plain characters.
      const odd = await memory.search({
        tenant_id: 'acme',
        text: `weather" & !( | tomorrow':*`,
        mode: 'fulltext',
      });
      assert.deepEqual(
        odd.hits.map((h) => h.memory.id),
        [none!.id],
      );
      const exact = await memory.search({ tenant_id: 'acme', text: 'ESPRESSO CUP', mode: 'exact' });
      assert.deepEqual(
        exact.hits.map((h) => h.memory.id),
        [one!.id],
      );
      await memory.close();
    });

    it('rejects a whole batch when one item is invalid, naming the field', async () => {
      const memory = await backend.place().open();
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
      assert.equal((await memory.list({ tenant_id: 'acme', limit: 10 })).items.length, 0);
      await memory.close();
    });

    it('hides and purges expired memories, recording the purge', async () => {
      const memory = await backend.place().open();
      const [gone, kept] = await memory.add(T, [
        { text: 'a fleeting thought about lunch', expires_at: Date.now() - 1 },
        { text: 'a lasting thought about lunch' },
      ]);
      assert.equal(await memory.get('acme', gone!.id), undefined);
      for (const mode of ['semantic', 'fulltext', 'hybrid', 'exact'] as const) {
        const result = await memory.search({ tenant_id: 'acme', text: 'thought about lunch', mode });
        assert.deepEqual(
          result.hits.map((h) => h.memory.id),
          [kept!.id],
          mode,
        );
      }
      assert.deepEqual(
        (await memory.list({ tenant_id: 'acme', limit: 10 })).items.map((m) => m.id),
        [kept!.id],
      );
      assert.equal(await memory.purgeExpired(), 1);
      assert.equal(await memory.purgeExpired(), 0);
      assert.equal(memory.size, 1);
      assert.equal((await memory.history('acme', gone!.id)).at(-1)?.action, 'delete');
      await memory.close();
    });

    it('loses nothing under concurrent writers and readers', async () => {
      const memory = await backend.place().open();
      const writers = Array.from({ length: 8 }, (_, w) =>
        (async () => {
          const ids: string[] = [];
          for (let i = 0; i < 10; i++) {
            const [m] = await memory.add(T, [{ text: `writer ${w} note ${i}`, user_id: `w${w}` }]);
            ids.push(m!.id);
            await memory.search({ tenant_id: 'acme', text: `note ${i}`, filter: { user_id: `w${w}` } });
          }
          await memory.update('acme', ids[0]!, { text: `writer ${w} revised` });
          return ids;
        })(),
      );
      const ids = (await Promise.all(writers)).flat();
      assert.equal(new Set(ids).size, 80);
      assert.equal(memory.size, 80);
      const listed = await memory.list({ tenant_id: 'acme', limit: 1000 });
      assert.deepEqual(listed.items.map((m) => m.id).sort(), [...ids].sort());
      const revised = await memory.search({
        tenant_id: 'acme',
        text: 'revised',
        mode: 'fulltext',
        top_k: 100,
      });
      assert.equal(revised.hits.length, 8);
      await memory.close();
    });

    it('keeps everything across a restart, even after a crash that skipped closing', async () => {
      const place = backend.place();
      const hnsw = { hnswThreshold: 0, exactThreshold: 0 };
      const first = await place.open(undefined, hnsw);
      const items = Array.from({ length: 40 }, (_, i) => ({
        text: `note ${i} about topic ${i % 7}`,
        user_id: 'u',
        metadata: { i },
        tags: [`topic-${i % 7}`],
      }));
      const added = await first.add(T, items);
      await first.close();

      const second = await place.open(undefined, hnsw);
      assert.equal(second.size, 40);
      const [late] = await second.add(T, [{ text: 'a zebra crossed the river' }]);
      await second.delete('acme', added[0]!.id);
      await second.storage.close(); // a crash: a saved index still reflects the first run

      const third = await place.open(undefined, hnsw);
      assert.equal(third.size, 40);
      const result = await third.search({
        tenant_id: 'acme',
        text: 'zebra river',
        mode: 'semantic',
        top_k: 1,
      });
      assert.equal(result.strategy, 'hnsw');
      assert.equal(result.hits[0]?.memory.id, late!.id);
      const all = await third.search({ tenant_id: 'acme', text: 'note topic', mode: 'semantic', top_k: 100 });
      assert.equal(all.hits.length, 40);
      assert.ok(!all.hits.some((h) => h.memory.id === added[0]!.id));
      assert.deepEqual(await third.get('acme', added[5]!.id), added[5]);
      assert.deepEqual(
        (await third.history('acme', added[0]!.id)).map((h) => h.action),
        ['add', 'delete'],
      );
      await third.close();
      await place.assertNoOrphans();
    });

    it('keeps a user with more memories than one vector block searchable across a restart', async () => {
      const place = backend.place();
      const first = await place.open();
      const d = first.embedder.dimensions;
      let seed = 9;
      const vector = () =>
        Float32Array.from({ length: d }, () => {
          seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
          return seed / 2 ** 32 - 0.5;
        });
      const items = Array.from({ length: BLOCK_ROWS + 50 }, (_, i) => ({
        text: `note ${i}`,
        user_id: 'u',
        embedding: vector(),
      }));
      const added = await first.add(T, items.slice(0, 1000));
      for (let i = 1000; i < items.length; i += 1000)
        added.push(...(await first.add(T, items.slice(i, i + 1000))));
      await first.delete('acme', added[0]!.id);
      await first.delete('acme', added[BLOCK_ROWS + 10]!.id);
      await first.close();

      const second = await place.open();
      assert.equal(second.size, items.length - 2);
      for (const i of [1, BLOCK_ROWS - 1, BLOCK_ROWS, items.length - 1]) {
        const result = await second.search({
          tenant_id: 'acme',
          vector: items[i]!.embedding,
          mode: 'semantic',
          filter: { user_id: 'u' },
          top_k: 1,
        });
        assert.equal(result.hits[0]?.memory.id, added[i]!.id);
      }
      await second.close();
      await place.assertNoOrphans();
    });

    it('refuses vector work after an embedder switch until re-indexed', async () => {
      const place = backend.place();
      const first = await place.open(new HashingEmbedder({ dimensions: 64 }));
      await first.add(T, [{ text: 'the cat sat on the mat' }, { text: 'quarterly revenue grew' }]);
      await first.close();

      const second = await place.open(new HashingEmbedder({ dimensions: 128 }));
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
      const semantic = await second.search({
        tenant_id: 'acme',
        text: 'cat mat',
        mode: 'semantic',
        top_k: 1,
      });
      assert.equal(semantic.hits[0]?.memory.text, 'the cat sat on the mat');
      await second.close();
      const third = await place.open(new HashingEmbedder({ dimensions: 128 }));
      assert.equal(third.embedderMismatch, undefined);
      await third.close();
    });
  });
}

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
