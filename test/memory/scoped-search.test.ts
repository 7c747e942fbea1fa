import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  HashingEmbedder,
  LongTermMemory,
  type MemoryFilter,
  type MemoryRecord,
  SqliteMemoryStorage,
  VectorIndex,
} from '../../src/memory/index.js';
import { stem, terms } from '../../src/memory/terms.js';

function open() {
  return LongTermMemory.open({
    storage: new SqliteMemoryStorage({ path: ':memory:' }),
    embedder: new HashingEmbedder({ dimensions: 64 }),
  });
}

let seed = 11;
function rand(): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 2 ** 32;
}
const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

/** Ids of every live memory of `tenant` that passes a scope-only filter, by a plain scan. */
function scan(all: MemoryRecord[], tenant: string, filter: MemoryFilter, now: number): string[] {
  return all
    .filter(
      (m) =>
        m.tenant_id === tenant &&
        (m.expires_at === null || m.expires_at > now) &&
        (filter.user_id === undefined || m.user_id === filter.user_id) &&
        (filter.agent_id === undefined || m.agent_id === filter.agent_id) &&
        (filter.session_id === undefined || m.session_id === filter.session_id),
    )
    .map((m) => m.id)
    .sort();
}

describe('scoped search (in-memory catalog, arenas and BM25)', () => {
  it('returns exactly the scope a scan returns, through updates, deletes and expiry, per tenant', async () => {
    const memory = await open();
    let all: MemoryRecord[] = [];
    for (const tenant of ['t', 'u']) {
      const items = Array.from({ length: 150 }, (_, i) => ({
        text: `note ${i} about ${pick(['tea', 'coffee', 'rain', 'trains'])} and ${pick(['work', 'home'])}`,
        user_id: pick(['u1', 'u2', null]),
        agent_id: pick(['a1', 'a2', null]),
        session_id: pick(['s1', 's2', null]),
        expires_at: rand() < 0.1 ? Date.now() - 1 : null,
      }));
      all.push(...(await memory.add({ tenant_id: tenant }, items)));
    }
    // Changes after the add: a deletion, an expiry set and one cleared, a new text.
    const mine = all.filter((m) => m.tenant_id === 't');
    const live = mine.filter((m) => m.expires_at === null);
    await memory.delete('t', live[0]!.id);
    const expired = await memory.update('t', live[1]!.id, { expires_at: Date.now() - 1 });
    const revived = mine.find((m) => m.expires_at !== null)!;
    const cleared = await memory.update('t', revived.id, { expires_at: null });
    const retexted = await memory.update('t', live[2]!.id, { text: 'a zebra on the train' });
    all = all
      .filter((m) => m.id !== live[0]!.id)
      .map((m) =>
        m.id === expired!.id
          ? expired!
          : m.id === cleared!.id
            ? cleared!
            : m.id === retexted!.id
              ? retexted!
              : m,
      );

    const filters: MemoryFilter[] = [
      {},
      { user_id: 'u1' },
      { user_id: 'u2', agent_id: 'a1' },
      { agent_id: 'a2' },
      { session_id: 's1' },
      { user_id: 'u1', session_id: 's2', agent_id: 'a2' },
      { user_id: 'nobody' },
    ];
    const now = Date.now();
    for (const tenant of ['t', 'u', 'none']) {
      for (const filter of filters) {
        const expected = scan(all, tenant, filter, now);
        for (const mode of ['semantic', 'hybrid'] as const) {
          const result = await memory.search({ tenant_id: tenant, text: 'note', mode, filter, top_k: 1000 });
          const got = result.hits.map((h) => h.memory.id).sort();
          if (mode === 'semantic') assert.deepEqual(got, expected, `${tenant} ${JSON.stringify(filter)}`);
          // Hybrid returns what matched either side: never anything outside the scope.
          else for (const id of got) assert.ok(expected.includes(id), `${tenant} ${JSON.stringify(filter)}`);
          assert.equal(result.candidates, expected.length);
        }
      }
    }
    // The new text is what both sides match; the old one is gone from the lexical index.
    const zebra = await memory.search({
      tenant_id: 't',
      text: 'zebra',
      mode: 'hybrid',
      weights: { semantic: 0, context: 0 },
    });
    assert.deepEqual(
      zebra.hits.map((h) => h.memory.id),
      [retexted!.id],
    );
    // Another tenant's memory never matches.
    const other = await memory.search({
      tenant_id: 'u',
      text: 'zebra',
      mode: 'hybrid',
      weights: { semantic: 0 },
    });
    assert.equal(other.hits.length, 0);
    await memory.close();
  });

  it('ranks the scope by cosine exactly as a brute-force scan does', async () => {
    const memory = await open();
    const items = Array.from({ length: 300 }, (_, i) => ({
      text: `memory ${i}`,
      user_id: i % 3 === 0 ? 'big' : `small-${i % 7}`,
      embedding: Array.from({ length: 64 }, () => rand() - 0.5),
    }));
    const added = await memory.add({ tenant_id: 't' }, items);
    const query = Array.from({ length: 64 }, () => rand() - 0.5);
    const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    const cosine = (v: number[]) => v.reduce((s, x, i) => s + x * query[i]!, 0) / (norm(v) * norm(query));
    const expected = added
      .map((m, i) => ({ id: m.id, score: cosine(items[i]!.embedding), user: m.user_id }))
      .filter((m) => m.user === 'big')
      .sort((a, b) => b.score - a.score)
      .slice(0, 10);
    const result = await memory.search({
      tenant_id: 't',
      vector: query,
      mode: 'semantic',
      filter: { user_id: 'big' },
      top_k: 10,
    });
    assert.deepEqual(
      result.hits.map((h) => h.memory.id),
      expected.map((e) => e.id),
    );
    for (const [i, hit] of result.hits.entries()) assert.ok(Math.abs(hit.score - expected[i]!.score) < 1e-5);
    await memory.close();
  });

  it('lends a memory part of its session neighbours’ scores in hybrid search, and only within the scope', async () => {
    const memory = await open();
    const [question, answer, unrelated] = await memory.add({ tenant_id: 't' }, [
      { text: 'What did you research last month?', session_id: 'chat', user_id: 'ada' },
      { text: 'Adoption agencies, mostly.', session_id: 'chat', user_id: 'ada' },
      { text: 'Bought new shoes.', session_id: 'other', user_id: 'ada' },
    ]);
    const query = { tenant_id: 't', text: 'research', mode: 'hybrid' as const, weights: { semantic: 0 } };
    const withContext = await memory.search(query);
    assert.deepEqual(
      withContext.hits.map((h) => h.memory.id),
      [question!.id, answer!.id],
    );
    const without = await memory.search({ ...query, weights: { semantic: 0, context: 0 } });
    assert.ok(!without.hits.some((h) => h.memory.id === answer!.id));
    assert.ok(!withContext.hits.some((h) => h.memory.id === unrelated!.id));
    // A neighbour outside the filter is not lent anything.
    await memory.add({ tenant_id: 't' }, [
      { text: 'Researching trains', session_id: 'mixed', user_id: 'bob' },
    ]);
    await memory.add({ tenant_id: 't' }, [{ text: 'Sounds fun', session_id: 'mixed', user_id: 'eve' }]);
    const scoped = await memory.search({ ...query, filter: { user_id: 'eve' } });
    assert.equal(scoped.hits.length, 0);
    // After a deletion the session's remaining memories are neighbours.
    await memory.delete('t', answer!.id);
    const [late] = await memory.add({ tenant_id: 't' }, [
      { text: 'Fine.', session_id: 'chat', user_id: 'ada' },
    ]);
    const after = await memory.search({ ...query, filter: { user_id: 'ada' } });
    assert.deepEqual(
      after.hits.map((h) => h.memory.id),
      [question!.id, late!.id],
    );
    await memory.close();
  });
});

describe('vector index partitions', () => {
  it('moves a key between partitions and searches whole partitions, key lists and exclusions exactly', () => {
    const d = 8;
    const index = new VectorIndex({ dimensions: d });
    const vectors = new Map<number, Float32Array>();
    for (let key = 1; key <= 60; key++) {
      const v = Float32Array.from({ length: d }, () => rand() - 0.5);
      vectors.set(key, v);
      index.upsert(key, v, key % 2 === 0 ? 'even' : 'odd');
    }
    index.upsert(3, vectors.get(3)!, 'even');
    index.remove(4);
    const query = Float32Array.from({ length: d }, () => rand() - 0.5);
    const cosine = (v: Float32Array) => {
      let dot = 0;
      let a = 0;
      let b = 0;
      for (let i = 0; i < d; i++) {
        dot += v[i]! * query[i]!;
        a += v[i]! * v[i]!;
        b += query[i]! * query[i]!;
      }
      return dot / Math.sqrt(a * b);
    };
    const brute = (keys: number[], k: number) =>
      keys
        .map((key) => ({ key, score: cosine(vectors.get(key)!) }))
        .sort((x, y) => y.score - x.score)
        .slice(0, k)
        .map((m) => m.key);
    const even = [...vectors.keys()].filter((k) => (k % 2 === 0 && k !== 4) || k === 3);
    const exclude = new Set(even.slice(0, 10));
    const got = index.search(query, 5, {
      kind: 'partitions',
      partitions: ['even'],
      exclude,
      size: even.length - exclude.size,
    });
    assert.deepEqual(
      got.map((m) => m.key),
      brute(
        even.filter((k) => !exclude.has(k)),
        5,
      ),
    );
    for (const keys of [even.slice(0, 25), [1, 7, 9, 3, 4], [...vectors.keys()]]) {
      assert.deepEqual(
        index.search(query, 6, { kind: 'keys', keys }).map((m) => m.key),
        brute(
          keys.filter((k) => k !== 4),
          6,
        ),
      );
    }
    assert.equal(index.size, 59);
  });
});

describe('terms', () => {
  it('stems words the Porter way and drops stopwords', () => {
    assert.deepEqual(
      ['hiking', 'hikes', 'hiked', 'painting', 'ponies', 'caresses', 'relational', 'agreed'].map(stem),
      ['hike', 'hike', 'hike', 'paint', 'poni', 'caress', 'relat', 'agre'],
    );
    assert.deepEqual(terms('What did Caroline research?'), ['carolin', 'research']);
  });
});
