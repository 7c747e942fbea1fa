import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  HashingEmbedder,
  type LongTermMemory,
  type MemoryFilter,
  type MemoryRecord,
} from '../../src/memory/index.js';
import { memoryBackends } from '../helpers/memory-backends.js';

// A brute-force scan written independently of the SQL compiler: the reference semantics.
type Json = unknown;

function field(metadata: Record<string, Json>, path: string): { present: boolean; value: Json } {
  let current: Json = metadata;
  for (const part of path.split('.')) {
    if (typeof current !== 'object' || current === null || Array.isArray(current) || !(part in current))
      return { present: false, value: undefined };
    current = (current as Record<string, Json>)[part];
  }
  return { present: true, value: current };
}

const sameType = (a: Json, b: Json) =>
  (a === null && b === null) || (a !== null && b !== null && typeof a === typeof b && !Array.isArray(a));
const equal = (a: Json, b: Json) => sameType(a, b) && a === b;

function holds(op: string, present: boolean, value: Json, arg: Json): boolean {
  switch (op) {
    case 'eq':
      return present && equal(value, arg);
    case 'ne':
      return !(present && equal(value, arg));
    case 'in':
      return present && (arg as Json[]).some((a) => equal(value, a));
    case 'nin':
      return !(present && (arg as Json[]).some((a) => equal(value, a)));
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      if (!present || typeof value !== typeof arg || (typeof value !== 'number' && typeof value !== 'string'))
        return false;
      const v = value as number | string;
      const a = arg as number | string;
      return op === 'gt' ? v > a : op === 'gte' ? v >= a : op === 'lt' ? v < a : v <= a;
    }
    case 'contains':
      if (typeof value === 'string') return typeof arg === 'string' && value.includes(arg);
      if (Array.isArray(value)) return value.some((v) => equal(v, arg));
      return false;
    case 'exists':
      return present === arg;
  }
  throw new Error(op);
}

function matchesMetadata(metadata: Record<string, Json>, filter: Record<string, Json>): boolean {
  return Object.entries(filter).every(([key, spec]) => {
    if (key === 'and') return (spec as Record<string, Json>[]).every((f) => matchesMetadata(metadata, f));
    if (key === 'or') return (spec as Record<string, Json>[]).some((f) => matchesMetadata(metadata, f));
    if (key === 'not') return !matchesMetadata(metadata, spec as Record<string, Json>);
    const { present, value } = field(metadata, key);
    if (typeof spec !== 'object' || spec === null) return holds('eq', present, value, spec);
    return Object.entries(spec).every(([op, arg]) => holds(op, present, value, arg));
  });
}

function matches(m: MemoryRecord, f: MemoryFilter): boolean {
  if (f.user_id !== undefined && m.user_id !== f.user_id) return false;
  if (f.agent_id !== undefined && m.agent_id !== f.agent_id) return false;
  if (f.tags !== undefined && !f.tags.every((t) => m.tags.includes(t))) return false;
  if (f.tags_any !== undefined && !f.tags_any.some((t) => m.tags.includes(t))) return false;
  if (f.created_after !== undefined && m.created_at < f.created_after) return false;
  if (f.created_before !== undefined && m.created_at >= f.created_before) return false;
  if (f.updated_after !== undefined && m.updated_at < f.updated_after) return false;
  if (f.updated_before !== undefined && m.updated_at >= f.updated_before) return false;
  return f.metadata === undefined || matchesMetadata(m.metadata, f.metadata as Record<string, Json>);
}

// Deterministic pseudo-random data covering every JSON type, missing fields and nesting.
let seed = 42;
const rand = () => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 2 ** 32;
};
const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
const colours = ['red', 'green', 'blue', 'Red'];

function metadata(): Record<string, Json> {
  const m: Record<string, Json> = {};
  if (rand() < 0.8) m.n = pick([0, 1, 2, 3, 2.5, -1, 10]);
  if (rand() < 0.8) m.colour = pick(colours);
  if (rand() < 0.5) m.flag = rand() < 0.5;
  if (rand() < 0.2) m.nothing = null;
  if (rand() < 0.3) m.n = pick(['1', '2', 'x']); // numbers as text: never equal to numbers
  if (rand() < 0.6) m.list = [pick(colours), pick([1, 2, 3]), ...(rand() < 0.5 ? ['blue'] : [])];
  if (rand() < 0.6) m.nested = { depth: pick([1, 2, 3]), name: pick(['alpha', 'beta', 'alphabet']) };
  if (rand() < 0.3) m.date = pick(['2024-01-05', '2024-06-30', '2025-02-01']);
  return m;
}

const FILTERS: MemoryFilter[] = [
  { metadata: { colour: 'red' } },
  { metadata: { n: 2 } },
  { metadata: { n: '2' } },
  { metadata: { flag: true } },
  { metadata: { flag: false } },
  { metadata: { nothing: null } },
  { metadata: { n: { eq: 1 } } },
  { metadata: { n: { ne: 1 } } },
  { metadata: { colour: { ne: 'red' } } },
  { metadata: { colour: { in: ['red', 'blue'] } } },
  { metadata: { n: { in: [1, '1', 3] } } },
  { metadata: { colour: { nin: ['red', 'blue'] } } },
  { metadata: { n: { gt: 1 } } },
  { metadata: { n: { gte: 2 } } },
  { metadata: { n: { lt: 2.5 } } },
  { metadata: { n: { lte: 0 } } },
  { metadata: { n: { gt: 0, lt: 3 } } },
  { metadata: { date: { gte: '2024-06-01', lt: '2025-01-01' } } },
  { metadata: { n: { gt: '1' } } },
  { metadata: { list: { contains: 'blue' } } },
  { metadata: { list: { contains: 2 } } },
  { metadata: { 'nested.name': { contains: 'alpha' } } },
  { metadata: { colour: { contains: 'e' } } },
  { metadata: { flag: { exists: true } } },
  { metadata: { flag: { exists: false } } },
  { metadata: { 'nested.depth': { exists: true, gte: 2 } } },
  { metadata: { 'nested.depth': 3, colour: 'green' } },
  { metadata: { or: [{ colour: 'red' }, { 'nested.depth': 1 }] } },
  { metadata: { and: [{ n: { gte: 1 } }, { or: [{ flag: true }, { list: { contains: 'red' } }] }] } },
  { metadata: { not: { colour: { in: ['red', 'green'] } } } },
  { tags: ['a'] },
  { tags: ['a', 'b'] },
  { tags_any: ['b', 'c'] },
  { user_id: 'u1', metadata: { n: { gte: 1 } } },
  { agent_id: 'agent-2', tags_any: ['c'] },
  { metadata: { 'list.0': { exists: true } } },
  { metadata: { 'nested.depth': { nin: [1, 2] }, list: { contains: 'Red' } } },
  { metadata: { not: { or: [{ n: { lt: 1 } }, { n: { exists: false } }] } } },
  { tags: [], metadata: { and: [{ date: { exists: true } }, { not: { date: '2024-06-30' } }] } },
];

const backends = memoryBackends();
after(async () => {
  for (const backend of backends) await backend.cleanup();
});

for (const backend of backends)
  describe(`memory filters: ${backend.name}`, () => {
    let memory: LongTermMemory;
    let all: MemoryRecord[];
    after(() => memory.close());
    before(async () => {
      memory = await backend.place().open(new HashingEmbedder({ dimensions: 64 }));
      const items = Array.from({ length: 400 }, (_, i) => ({
        text: `memory ${i} about ${pick(['cats', 'dogs', 'tea', 'coffee', 'rain'])} and ${pick(['work', 'home', 'travel'])}`,
        user_id: pick(['u1', 'u2', 'u3']),
        agent_id: pick(['agent-1', 'agent-2']),
        tags: ['a', 'b', 'c'].filter(() => rand() < 0.4),
        metadata: metadata(),
      }));
      // Two batches a few ms apart, so time ranges split them.
      all = await memory.add({ tenant_id: 't' }, items.slice(0, 200));
      await new Promise((resolve) => setTimeout(resolve, 5));
      all.push(...(await memory.add({ tenant_id: 't' }, items.slice(200))));
      await memory.add({ tenant_id: 'other' }, items.slice(0, 50));
    });

    async function listAll(filter: MemoryFilter): Promise<string[]> {
      const page = await memory.list({ tenant_id: 't', filter, limit: 1000 });
      return page.items.map((m) => m.id).sort();
    }

    for (const [i, filter] of FILTERS.entries()) {
      it(`filter ${i} returns exactly what a scan returns: ${JSON.stringify(filter)}`, async () => {
        const expected = all
          .filter((m) => matches(m, filter))
          .map((m) => m.id)
          .sort();
        assert.deepEqual(await listAll(filter), expected);
      });
    }

    it('time ranges split created and updated times exactly', async () => {
      const boundary = all[200]!.created_at;
      for (const filter of [
        { created_after: boundary },
        { created_before: boundary },
        { updated_after: boundary, metadata: { colour: 'blue' } },
      ] as MemoryFilter[]) {
        const expected = all
          .filter((m) => matches(m, filter))
          .map((m) => m.id)
          .sort();
        assert.ok(expected.length > 0 && expected.length < all.length);
        assert.deepEqual(await listAll(filter), expected);
      }
    });

    it('applies the filter before the top-k cut in every search mode', async () => {
      const filter: MemoryFilter = { user_id: 'u2', metadata: { colour: { in: ['blue', 'Red'] } } };
      const allowed = new Set(all.filter((m) => matches(m, filter)).map((m) => m.id));
      assert.ok(allowed.size > 10);
      for (const mode of ['semantic', 'hybrid', 'fulltext', 'exact'] as const) {
        const result = await memory.search({ tenant_id: 't', text: 'memory', mode, filter, top_k: 10 });
        assert.equal(result.hits.length, 10, mode);
        for (const hit of result.hits) assert.ok(allowed.has(hit.memory.id), mode);
      }
      // Semantic: the same ten a brute-force cosine over the allowed set ranks first.
      const query = await memory.embedder.embedQuery('cats at home');
      const embedder = new HashingEmbedder({ dimensions: 64 });
      const scored = all
        .filter((m) => allowed.has(m.id))
        .map((m) => {
          const v = embedder.embedDocument(m.text);
          let dot = 0;
          for (let i = 0; i < v.length; i++) dot += v[i]! * query[i]!;
          return { id: m.id, dot };
        })
        .sort((a, b) => b.dot - a.dot);
      const result = await memory.search({
        tenant_id: 't',
        text: 'cats at home',
        mode: 'semantic',
        filter,
        top_k: 10,
      });
      const got = result.hits.map((h) => h.score);
      for (const [i, s] of scored.slice(0, 10).entries()) assert.ok(Math.abs(s.dot - got[i]!) < 1e-4);
    });

    it('ranks hybrid results stably, with per-component scores', async () => {
      const query = { tenant_id: 't', text: 'coffee at work', mode: 'hybrid' as const, top_k: 20 };
      const first = await memory.search(query);
      const second = await memory.search(query);
      assert.deepEqual(
        first.hits.map((h) => h.memory.id),
        second.hits.map((h) => h.memory.id),
      );
      for (let i = 1; i < first.hits.length; i++) assert.ok(first.hits[i - 1]!.score >= first.hits[i]!.score);
      assert.ok(first.hits.some((h) => h.scores.fulltext !== undefined && h.scores.semantic !== undefined));
    });

    it('rejects malformed filters with a 400 naming the field', async () => {
      const bad: [MemoryFilter, string][] = [
        [{ metadata: { n: { between: 1 } } }, 'filter.metadata.n.between'],
        [{ metadata: { n: { in: [] } } }, 'filter.metadata.n.in'],
        [{ metadata: { 'a..b': 1 } }, 'filter.metadata.a..b'],
        [{ metadata: { n: { gt: true as unknown as number } } }, 'filter.metadata.n.gt'],
        [{ tags: 'a' as unknown as string[] }, 'filter.tags'],
        [{ created_after: 'yesterday' as unknown as number }, 'filter.created_after'],
      ];
      for (const [filter, field] of bad) {
        await assert.rejects(
          memory.list({ tenant_id: 't', filter, limit: 10 }),
          (err: { status: number; details?: { field?: string } }) =>
            err.status === 400 && err.details?.field === field,
          field,
        );
      }
    });
  });
