/**
 * `npm run bench:admission:redis`: shared admission decisions on the local Redis from one process,
 * side by side with rate-limiter-flexible's Redis limiter (same ioredis client, same concurrency).
 * Targets: ≥ 20,000 decisions/s, p99 ≤ 2 ms. Flags: --seconds S (5) --inflight N (64).
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { type AdmitPlan, LocalLimits, RedisLimits } from '../../src/admission/index.js';
import { dropPrefix, SHARED_REDIS_URL } from '../../test/helpers/redis.js';
import { describeMachine } from '../lib/machine.js';
import { table, updateDocs, writeResult } from '../lib/report.js';
import { percentile, round } from '../lib/stats.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    inflight: { type: 'string', default: '64' },
    'latency-inflight': { type: 'string', default: '8' },
  },
});
const seconds = Number(values.seconds);
const inflight = Number(values.inflight);
const latencyInflight = Number(values['latency-inflight']);
const prefix = `agentd-bench:${process.pid}:`;

/** Throughput with `inflight` decisions outstanding, and latency with `latencyInflight` (moderate load). */
async function drive(
  name: string,
  decide: (i: number) => Promise<unknown>,
): Promise<Record<string, number | string>> {
  const saturated = await load(decide, inflight);
  const moderate = await load(decide, latencyInflight);
  return {
    name,
    decisions_per_sec: saturated.perSecond,
    p50_ms: round(percentile(moderate.latencies, 50)),
    p99_ms: round(percentile(moderate.latencies, 99)),
  };
}

async function load(
  decide: (i: number) => Promise<unknown>,
  concurrency: number,
): Promise<{ perSecond: number; latencies: number[] }> {
  const latencies: number[] = [];
  let count = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (performance.now() < end) {
        const started = performance.now();
        await decide(worker * 1_000_000 + count);
        latencies.push(performance.now() - started);
        count++;
      }
    }),
  );
  return { perSecond: Math.round(count / seconds), latencies };
}

const limits = new RedisLimits({
  url: SHARED_REDIS_URL,
  keyPrefix: prefix,
  failMode: 'closed',
  fallback: new LocalLimits(),
});
await limits.ready();
const plan: AdmitPlan = {
  rates: [
    {
      key: 't:acme:rps',
      limit: 'tenant.requests_per_second',
      capacity: 1e12,
      refillPerSecond: 1e12,
      unit: 'request',
    },
    {
      key: 't:acme:tpm',
      limit: 'tenant.tokens_per_minute',
      capacity: 1e12,
      refillPerSecond: 1e12,
      unit: 'token',
    },
  ],
  budgets: [{ key: 't:acme:usd', limit: 'tenant.usd_per_day', period: 'day', max: 1e12, unit: 'usd' }],
  concurrency: [{ key: 't:acme:conc', limit: 'tenant.concurrency', max: 1e9 }],
};
const rateOnly: AdmitPlan = { rates: [plan.rates[0]!], budgets: [], concurrency: [] };
const redis = new Redis(SHARED_REDIS_URL, { enableAutoPipelining: true });
const rlf = new RateLimiterRedis({
  storeClient: redis,
  keyPrefix: `${prefix}rlf`,
  points: 1e12,
  duration: 1,
});

const results = [];
try {
  for (let round_ = 0; round_ < 2; round_++) {
    results.push(
      await drive('agentd: rate only (1 bucket)', () => limits.admit(rateOnly, 'h', 0) as Promise<unknown>),
    );
    results.push(
      await drive('agentd: full decision (2 buckets + budget + slot) + release', async (i) => {
        await limits.admit(plan, `h${i}`, 100);
        await limits.release(plan.concurrency, `h${i}`);
      }),
    );
    results.push(await drive('rate-limiter-flexible (Redis): consume', () => rlf.consume('acme')));
  }
} finally {
  await limits.close();
  redis.disconnect();
  await dropPrefix(SHARED_REDIS_URL, prefix);
}
// Medians of the two rounds per case.
const byName = new Map<string, Record<string, number | string>[]>();
for (const r of results) byName.set(String(r.name), [...(byName.get(String(r.name)) ?? []), r]);
const summary = [...byName].map(([name, runs]) => {
  const pick = (key: string) =>
    runs.map((r) => Number(r[key])).sort((a, b) => a - b)[Math.floor((runs.length - 1) / 2)]!;
  return {
    name,
    decisions_per_sec: pick('decisions_per_sec'),
    p50_ms: pick('p50_ms'),
    p99_ms: pick('p99_ms'),
  };
});
const text = [
  table(
    [
      'decision',
      `decisions/s (${inflight} in flight)`,
      `p50 ms (${latencyInflight} in flight)`,
      `p99 ms (${latencyInflight} in flight)`,
    ],
    summary.map((s) => [s.name, s.decisions_per_sec, s.p50_ms, s.p99_ms]),
  ),
  '',
  `One process; throughput with ${inflight} decisions in flight, latency at a moderate ${latencyInflight} in flight (at saturation latency is only queueing: in-flight ÷ throughput); ${seconds} s per measurement, median of 2 alternating rounds; Redis ${SHARED_REDIS_URL} on the same 2-core machine. The full decision also releases its slot (a task's whole admission lifecycle: two round trips). Targets: ≥ 20,000 decisions/s and p99 ≤ 2 ms. Command: \`npm run bench:admission:redis\`.`,
].join('\n');
process.stdout.write(`${text}\n`);
writeResult('admission-redis', { machine: describeMachine(), seconds, inflight, results, summary });
updateDocs('admission-redis', text);
