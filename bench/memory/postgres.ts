/**
 * `npm run bench:memory-postgres`: long-term memory on Postgres beside SQLite, in one run, on the
 * data of `bench:memory`'s scoped search (20,000 memories, 10,000 of one user, 384-d, precomputed
 * embeddings): batched adds, scoped semantic / hybrid / full-text search (queries alternate between
 * the adapters), a second node loading everything at start, and a search on that node right after
 * the first node added a memory (the catch-up). Postgres: the local server (TEST_DATABASE_URL or
 * postgres://postgres@127.0.0.1:5432/test), in a schema dropped at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  HashingEmbedder,
  LongTermMemory,
  type MemoryStorage,
  PostgresMemoryStorage,
  type SearchMode,
  SqliteMemoryStorage,
} from '../../src/memory/index.js';
import { describeMachine } from '../lib/machine.js';
import { table, updateDocs, writeResult } from '../lib/report.js';
import { percentile, round } from '../lib/stats.js';
import { clustered } from './vectors.js';

const DIM = 384;
const TOTAL = 20_000;
const QUERIES = 200;
const URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `agentd_bench_memory_${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'agentd-bench-pgmem-'));

const open = (storage: MemoryStorage, shared: boolean) =>
  LongTermMemory.open({
    storage,
    embedder: new HashingEmbedder({ dimensions: DIM }),
    maxBatch: 10_000,
    shared,
  });
const openPostgres = async () =>
  open(await PostgresMemoryStorage.open({ url: URL, schema, poolSize: 4 }), true);

const vectors = clustered(TOTAL + QUERIES, 50, DIM);
const words = ['tea', 'coffee', 'hiking', 'paris', 'meeting', 'budget', 'python', 'garden', 'piano', 'cat'];
const items = Array.from({ length: TOTAL }, (_, i) => ({
  text: `note ${i}: ${words[i % 10]} and ${words[(i * 7) % 10]} on day ${i % 365}`,
  user_id: i < 10_000 ? 'u-big' : `u-${i % 100}`,
  metadata: { day: i % 365 },
  embedding: vectors.subarray(i * DIM, (i + 1) * DIM),
}));

const backends = [
  { name: 'SQLite', memory: await open(new SqliteMemoryStorage({ path: join(dir, 'memory.db') }), false) },
  { name: 'Postgres', memory: await openPostgres() },
];
const figures: Record<string, Record<string, number>> = { SQLite: {}, Postgres: {} };

try {
  for (const { name, memory } of backends) {
    const started = performance.now();
    for (let i = 0; i < TOTAL; i += 1000) await memory.add({ tenant_id: 't' }, items.slice(i, i + 1000));
    figures[name]!.add = Math.round(TOTAL / ((performance.now() - started) / 1000));
  }

  const queries = vectors.slice(TOTAL * DIM);
  for (const mode of ['semantic', 'hybrid', 'fulltext'] as SearchMode[]) {
    const times: Record<string, number[]> = { SQLite: [], Postgres: [] };
    for (let q = 0; q < QUERIES; q++) {
      for (const { name, memory } of backends) {
        const t0 = performance.now();
        await memory.search({
          tenant_id: 't',
          text: mode === 'semantic' ? undefined : `${words[q % 10]} ${words[(q + 3) % 10]}`,
          vector: mode === 'fulltext' ? undefined : queries.subarray(q * DIM, (q + 1) * DIM),
          mode,
          filter: { user_id: 'u-big' },
          top_k: 10,
        });
        times[name]!.push(performance.now() - t0);
      }
    }
    for (const name of ['SQLite', 'Postgres']) figures[name]![mode] = round(percentile(times[name]!, 50));
  }

  // A second node: loads every vector at start, then catches up on the first node's writes.
  const a = backends[1]!.memory;
  const t0 = performance.now();
  const b = await openPostgres();
  figures.Postgres!.load = Math.round(performance.now() - t0);
  const catchUps: number[] = [];
  for (let q = 0; q < 50; q++) {
    await a.add({ tenant_id: 't' }, [{ text: `late note ${q}`, user_id: 'u-big' }]);
    const t1 = performance.now();
    const found = await b.search({
      tenant_id: 't',
      text: `late note ${q}`,
      mode: 'semantic',
      top_k: 1,
      filter: { user_id: 'u-big' },
    });
    catchUps.push(performance.now() - t1);
    if (found.hits[0]?.memory.text !== `late note ${q}`) throw new Error("node B missed node A's memory");
  }
  figures.Postgres!.catchUp = round(percentile(catchUps, 50));
  await b.close();
} finally {
  for (const { name, memory } of backends) {
    if (name === 'Postgres') await (memory.storage as PostgresMemoryStorage).dropSchema();
    await memory.close();
  }
  rmSync(dir, { recursive: true, force: true });
}

const s = figures.SQLite!;
const p = figures.Postgres!;
const ratio = (key: string) => `${round(p[key]! / s[key]!)}×`;
const rows: (string | number)[][] = [
  ['add, precomputed 384-d, batches of 1,000 (memories/s)', s.add!, p.add!, ratio('add')],
  ['scoped semantic search p50, 10,000 of one user (ms)', s.semantic!, p.semantic!, ratio('semantic')],
  ['scoped hybrid search p50 (ms)', s.hybrid!, p.hybrid!, ratio('hybrid')],
  ['scoped full-text search p50 (ms)', s.fulltext!, p.fulltext!, ratio('fulltext')],
  ['second node: load 20,000 vectors at start (ms)', '—', p.load!, ''],
  ["second node: search right after the first node's add, p50 (ms)", '—', p.catchUp!, ''],
];
const markdown = `### Memory on Postgres beside SQLite (\`npm run bench:memory-postgres\`)

Measured ${new Date().toISOString().slice(0, 10)} on the shared 2-core machine (load average ${loadavg()[0]!.toFixed(1)}: read the ratios, not the absolute figures). Same data as the scoped search above; search queries alternate between the adapters; the local Postgres 15 over TCP; medians.

${table(['measure', 'SQLite', 'Postgres', 'Postgres / SQLite'], rows)}`;
console.log(markdown);
writeResult('memory-postgres', { figures, machine: describeMachine(), load: loadavg()[0] });
updateDocs('memory-postgres', markdown);
