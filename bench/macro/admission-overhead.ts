/**
 * `npm run bench:admission:e2e`: the core one-call task with admission off, on (local limits)
 * and on (limits shared on Redis), side by side in alternating rounds. Target: admission on stays
 * within 5% of admission off. The limits are set high enough never to refuse: this measures their
 * cost, not their effect. Flags: --rounds N (3) --seconds S (5) --requests N (2000)
 */
import { parseArgs } from 'node:util';
import { tempDir } from '../../test/helpers/agentd.js';
import { dropPrefix, SHARED_REDIS_URL } from '../../test/helpers/redis.js';
import { mockBackedConfig, startAgentdProcess, startMockProcess } from '../lib/agentd.js';
import { measureLatency, measureThroughput, type Target } from '../lib/load.js';
import { describeMachine } from '../lib/machine.js';
import { table, updateDocs, writeResult } from '../lib/report.js';
import { median, round } from '../lib/stats.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    requests: { type: 'string', default: '2000' },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const requests = Number(values.requests);

const high = 1e9;
const limits = {
  global: { requests_per_second: high, tokens_per_minute: high, concurrency: 1_000_000 },
  default_tenant: {
    requests_per_second: high,
    tokens_per_minute: high,
    concurrency: 1_000_000,
    usd_per_day: high,
  },
  agents: { bench: { requests_per_second: high } },
};
const prefix = `agentd-bench-e2e:${process.pid}:`;
const dir = tempDir('agentd-bench-admission-');
const mock = await startMockProcess();
const base = mockBackedConfig(mock.match);
const servers = {
  'admission off': await startAgentdProcess(dir.path, 'off', base),
  'admission on (local)': await startAgentdProcess(dir.path, 'local', { ...base, limits }),
  'admission on (Redis)': await startAgentdProcess(dir.path, 'redis', {
    ...base,
    limits,
    redis: { url: SHARED_REDIS_URL, key_prefix: prefix },
  }),
};
const targets: Target[] = Object.entries(servers).map(([name, server]) => ({
  name,
  url: server.match,
  path: '/v1/agents/bench/run',
  body: JSON.stringify({ input: 'hello' }),
  validate: (status, body) => status === 200 && body.includes('"succeeded"'),
}));

const samples = new Map<string, { rps: number[]; p50: number[]; p99: number[] }>();
try {
  for (let r = 1; r <= rounds; r++) {
    for (const target of targets) {
      const latency = await measureLatency(target, requests, Math.min(500, requests));
      const throughput = await measureThroughput(target, 32, seconds);
      const entry = samples.get(target.name) ?? { rps: [], p50: [], p99: [] };
      entry.rps.push(throughput.requests_per_sec);
      entry.p50.push(latency.p50_ms);
      entry.p99.push(latency.p99_ms);
      samples.set(target.name, entry);
      process.stderr.write(
        `round ${r} ${target.name}: ${Math.round(throughput.requests_per_sec)} req/s, p50 ${round(latency.p50_ms)} ms\n`,
      );
    }
  }
} finally {
  for (const server of Object.values(servers)) await server.stop();
  await mock.stop();
  dir.remove();
  await dropPrefix(SHARED_REDIS_URL, prefix);
}

const off = samples.get('admission off')!;
const rows = [...samples].map(([name, s]) => [
  name,
  Math.round(median(s.rps)),
  round(median(s.rps) / median(off.rps)),
  round(median(s.p50)),
  round(median(s.p99)),
]);
const text = [
  table(['agentd one-call task', 'req/s @32', 'vs off', 'p50 ms @1', 'p99 ms @1'], rows),
  '',
  `Global, tenant and agent request and token rates, concurrency and a daily budget all configured (high enough never to refuse). Medians of ${rounds} alternating rounds. Target: admission on within 5% of off. Command: \`npm run bench:admission:e2e\`.`,
].join('\n');
process.stdout.write(`\n${text}\n`);
writeResult('admission-e2e', {
  machine: describeMachine(),
  rounds,
  seconds,
  requests,
  samples: Object.fromEntries(samples),
});
updateDocs('admission-e2e', text);
