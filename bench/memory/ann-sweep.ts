/**
 * `npm run bench:ann-sweep -- --n 300000 --quantization i8 --connectivity 16`: one HNSW build of
 * clustered 384-d unit vectors of the global ANN benchmark (its generator, in
 * bench/memory/memory.ts), then a sweep of the search breadth (`ef`) and of the exact re-rank
 * window on that one build. usearch widens a search to at least the count asked for, so asking
 * for `ef` neighbours of an index built with a small `expansion_search` searches with breadth
 * `ef`; the first `rerank` of them are re-scored exactly against the f32 vectors (0: the index's
 * own order). Settings are interleaved round by round; an exact search over a fixed 10,000-vector
 * slice is timed in the same rounds as a reference for the machine's load.
 */
import { loadavg } from 'node:os';
import usearch, { type Matches, MetricKind, ScalarKind } from 'usearch';
import { percentile, round } from '../lib/stats.js';
import { clustered } from './vectors.js';

const DIM = 384;
const K = 10;
const QUERIES = 200;
function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : process.argv[at + 1]!;
}
const N = Number(flag('n', '300000'));
const QUANTIZATION = flag('quantization', 'f16') as 'f32' | 'f16' | 'bf16' | 'i8';
const CONNECTIVITY = Number(flag('connectivity', '16'));
const EXPANSION_ADD = Number(flag('expansion-add', '128'));
const EFS = flag('ef', '32,48,64,96,128,192,256').split(',').map(Number);
const RERANKS = flag('rerank', '0,40').split(',').map(Number);
const ROUNDS = Number(flag('rounds', '3'));
const SCALAR = {
  f32: ScalarKind.F32,
  f16: ScalarKind.F16,
  bf16: ScalarKind.BF16,
  i8: ScalarKind.I8,
} as const;

const all = clustered(N + QUERIES, 1000, DIM);
const data = all.subarray(0, N * DIM);
const queries = Array.from({ length: QUERIES }, (_, q) => all.slice((N + q) * DIM, (N + q + 1) * DIM));
const truth = queries.map((query) => {
  const exact = usearch.exactSearch(data, query, DIM, K, MetricKind.IP, 0) as Matches;
  return new Set(Array.from(exact.keys, Number));
});
const reference = data.slice(0, 10_000 * DIM);

const rssBefore = process.memoryUsage().rss;
const index = new usearch.Index({
  dimensions: DIM,
  metric: MetricKind.Cos,
  quantization: SCALAR[QUANTIZATION],
  connectivity: CONNECTIVITY,
  expansion_add: EXPANSION_ADD,
  expansion_search: K,
  multi: false,
});
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const CHUNK = 50_000;
for (let start = 0; start < N; start += CHUNK) {
  const end = Math.min(N, start + CHUNK);
  const keys = new BigUint64Array(end - start);
  for (let i = 0; i < keys.length; i++) keys[i] = BigInt(start + i);
  index.add(keys, data.subarray(start * DIM, end * DIM), 0);
}
const buildS = (performance.now() - t0) / 1000;
const buildCpu = process.cpuUsage(cpu0);
const rssMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
console.log(
  `n ${N} ${QUANTIZATION} M ${CONNECTIVITY} efc ${EXPANSION_ADD}: build ${round(buildS)} s wall, ` +
    `${round((buildCpu.user + buildCpu.system) / 1e6)} s CPU, index RSS ${Math.round(rssMb)} MB, load ${loadavg()[0]!.toFixed(1)}`,
);

/** The `K` best of the first `window` candidates by exact inner product with the f32 vectors. */
function rerank(query: Float32Array, keys: BigUint64Array, window: number): number[] {
  const scored: { key: number; score: number }[] = [];
  for (let i = 0; i < Math.min(window, keys.length); i++) {
    const key = Number(keys[i]);
    const offset = key * DIM;
    let dot = 0;
    for (let d = 0; d < DIM; d++) dot += query[d]! * data[offset + d]!;
    scored.push({ key, score: dot });
  }
  scored.sort((a, b) => b.score - a.score);
  return scored.slice(0, K).map((m) => m.key);
}

interface Setting {
  ef: number;
  rerank: number;
  times: number[];
  found: number;
  cpuUs: number;
}
const settings: Setting[] = [];
for (const ef of EFS)
  for (const window of RERANKS)
    if (window <= ef) settings.push({ ef, rerank: window, times: [], found: 0, cpuUs: 0 });
const referenceTimes: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  for (const setting of settings) {
    const cpu = process.cpuUsage();
    for (let q = 0; q < QUERIES; q++) {
      const query = queries[q]!;
      const started = performance.now();
      const matches = index.search(query, Math.max(setting.ef, K), 1) as Matches;
      const top =
        setting.rerank === 0
          ? Array.from(matches.keys.subarray(0, K), Number)
          : rerank(query, matches.keys, setting.rerank);
      setting.times.push(performance.now() - started);
      if (r === 0) for (const key of top) if (truth[q]!.has(key)) setting.found++;
    }
    const used = process.cpuUsage(cpu);
    setting.cpuUs += (used.user + used.system) / QUERIES / ROUNDS;
    const started = performance.now();
    usearch.exactSearch(reference, queries[r % QUERIES]!, DIM, K, MetricKind.IP, 1);
    referenceTimes.push(performance.now() - started);
  }
}
console.log('| ef | re-rank | p50 ms | CPU µs/query | recall@10 |');
console.log('| --- | --- | --- | --- | --- |');
for (const s of settings)
  console.log(
    `| ${s.ef} | ${s.rerank === 0 ? '—' : s.rerank} | ${round(percentile(s.times, 50))} | ${Math.round(s.cpuUs)} | ${round(s.found / (QUERIES * K))} |`,
  );
console.log(
  `reference: exact search over 10,000 × ${DIM} f32, p50 ${round(percentile(referenceTimes, 50))} ms`,
);
