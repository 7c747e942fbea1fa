/**
 * `npm run bench:cache`: an L1 hit side by side with a bare lru-cache and a Map (target p50 ≤
 * 100 ns), and an L2 hit on the local Redis (target p50 ≤ 0.5 ms).
 */
import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { MultiLevelCache } from '../../src/cache/index.js';
import { AgentdMetrics } from '../../src/observability/index.js';
import { dropPrefix, SHARED_REDIS_URL } from '../../test/helpers/redis.js';
import { describeMachine } from '../lib/machine.js';
import { measureMicro } from '../lib/micro.js';
import { table, updateDocs, writeResult } from '../lib/report.js';
import { percentile, round } from '../lib/stats.js';

const options = { maxEntries: 10_000, maxBytes: 64 * 2 ** 20, defaultTtlMs: 3_600_000, negativeTtlMs: 5000 };
const cache = new MultiLevelCache<string>({ name: 'bench', metrics: new AgentdMetrics(), ...options });
const lru = new LRUCache<string, string>({ max: 10_000, ttl: 3_600_000 });
const map = new Map<string, string>();
const keys = Array.from({ length: 1000 }, (_, i) => `key-${i}`);
for (const key of keys) {
  await cache.set(key, 'value');
  lru.set(key, 'value');
  map.set(key, 'value');
}
const load = async () => 'value';
let i = 0;
const micro = await measureMicro({
  'agentd L1 hit (read-through get, metrics on)': () => cache.get(keys[i++ % 1000]!, load),
  'agentd L1 peek': () => cache.peek(keys[i++ % 1000]!),
  'lru-cache get (ttl)': () => lru.get(keys[i++ % 1000]!),
  'Map get': () => map.get(keys[i++ % 1000]!),
});

// L2: node A writes, node B (L1 of one entry) reads keys it does not hold: every read is an L2 hit.
const prefix = `agentd-bench-cache:${process.pid}:`;
const clients = [
  new Redis(SHARED_REDIS_URL),
  new Redis(SHARED_REDIS_URL),
  new Redis(SHARED_REDIS_URL),
  new Redis(SHARED_REDIS_URL),
];
const redisOf = (a: number) => ({ client: clients[a]!, subscriber: clients[a + 1]!, prefix });
const writer = new MultiLevelCache<string>({ name: 'bench', ...options, redis: redisOf(0) });
const reader = new MultiLevelCache<string>({ name: 'bench', ...options, maxEntries: 1, redis: redisOf(2) });
const remote = Array.from({ length: 2000 }, (_, n) => `remote-${n}`);
for (const key of remote) await writer.set(key, 'x'.repeat(200));
const latencies: number[] = [];
for (let round_ = 0; round_ < 3; round_++) {
  for (const key of remote) {
    const started = performance.now();
    await reader.get(key, async () => {
      throw new Error('expected an L2 hit');
    });
    latencies.push(performance.now() - started);
  }
}
for (const client of clients) client.disconnect();
await dropPrefix(SHARED_REDIS_URL, prefix);

const l2 = {
  name: 'agentd L2 hit (Redis GET, 200-byte value)',
  p50_ms: percentile(latencies, 50),
  p99_ms: percentile(latencies, 99),
};
const text = [
  table(
    ['L1 operation', 'p50 ns', 'avg ns', 'p99 ns'],
    micro.map((m) => [m.name, round(m.p50_ns), round(m.avg_ns), round(m.p99_ns)]),
  ),
  '',
  table(['L2 operation', 'p50 ms', 'p99 ms'], [[l2.name, round(l2.p50_ms), round(l2.p99_ms)]]),
  '',
  `Targets: L1 hit p50 ≤ 100 ns; L2 hit p50 ≤ 0.5 ms (local Redis, sequential requests). ${describeMachine().cpu}, Node ${process.version}. Command: \`npm run bench:cache\`.`,
].join('\n');
process.stdout.write(`${text}\n`);
writeResult('cache', { machine: describeMachine(), micro, l2 });
updateDocs('cache', text);
