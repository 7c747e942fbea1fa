/**
 * `npm run bench:distributed`: the distributed path (Postgres + BullMQ + Redis Streams) against the
 * mock model, side by side with the local path in one run.
 *   1. Cost per task: one node in this process runs tasks one after another, locally (SQLite,
 *      in-process queue) then distributed (Postgres, BullMQ, event stream); latency per task and
 *      Redis commands sent per task (every connection of the node, BullMQ's worker included).
 *   2. Throughput with 1, 2 and 3 `agentd serve` processes sharing Redis and Postgres: tasks
 *      submitted round-robin by `--clients` concurrent clients, each waiting for its task's end.
 * Every process shares the machine's cores with Redis, Postgres and the mock: the node-count
 * figures say what this machine allows, not how a cluster of separate machines scales.
 *
 * Flags: --tasks N (400, per node count)  --sequential N (200)  --clients N (32)
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { createLogger } from '../../src/observability/index.js';
import { Runtime } from '../../src/runtime/index.js';
import { tempDir } from '../../test/helpers/agentd.js';
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../../test/helpers/postgres.js';
import { dropPrefix, SHARED_REDIS_URL, testPrefix } from '../../test/helpers/redis.js';
import { mockBackedConfig, startAgentdProcess, startMockProcess } from '../lib/agentd.js';
import { describeMachine } from '../lib/machine.js';
import type { Started } from '../lib/processes.js';
import { table, updateDocs, writeResult } from '../lib/report.js';
import { median, percentile, round } from '../lib/stats.js';

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: '400' },
    sequential: { type: 'string', default: '200' },
    clients: { type: 'string', default: '32' },
  },
});
const tasks = Number(values.tasks);
const sequential = Number(values.sequential);
const clients = Number(values.clients);
const dir = tempDir('agentd-bench-distributed-');
const mock = await startMockProcess();
const base = mockBackedConfig(mock.match);

/** Counts commands every ioredis connection of this process sends. */
let redisCommands = 0;
const send = Redis.prototype.sendCommand;
Redis.prototype.sendCommand = function counted(this: Redis, ...args: Parameters<typeof send>) {
  redisCommands++;
  return send.apply(this, args);
};

interface CostResult {
  mode: string;
  p50_ms: number;
  p99_ms: number;
  redis_commands_per_task: number;
}

async function costPerTask(mode: 'local' | 'distributed'): Promise<CostResult> {
  const prefix = testPrefix();
  const schema = uniqueSchema('agentd_bench');
  const config: Record<string, unknown> = {
    ...base,
    log: { level: 'warn' },
    storage: { path: `${dir.path}/${mode}.db` },
  };
  if (mode === 'distributed') {
    config.storage = { url: TEST_DATABASE_URL, schema };
    config.redis = { url: SHARED_REDIS_URL, key_prefix: prefix };
    config.distributed = { enabled: true };
  }
  const runtime = await Runtime.create({ config, env: {}, logger: createLogger({ level: 'silent' }) });
  for (let i = 0; i < 20; i++) await runtime.run('bench', 'warm up');
  const latencies: number[] = [];
  const before = redisCommands;
  for (let i = 0; i < sequential; i++) {
    const started = performance.now();
    const record = await runtime.run('bench', `hello ${i}`);
    latencies.push(performance.now() - started);
    if (record.status !== 'succeeded') throw new Error(`task ${record.id} ${record.status}`);
  }
  const commands = redisCommands - before;
  await runtime.close({ drainMs: 0 });
  if (mode === 'distributed') {
    await dropPrefix(SHARED_REDIS_URL, prefix);
    await dropSchema(schema);
  }
  return {
    mode,
    p50_ms: round(median(latencies)),
    p99_ms: round(percentile(latencies, 99)),
    redis_commands_per_task: round(commands / sequential),
  };
}

interface ThroughputRow {
  nodes: number;
  tasks_per_second: number;
  p50_ms: number;
  p99_ms: number;
  failed: number;
}

async function throughput(nodeCount: number): Promise<ThroughputRow> {
  const prefix = testPrefix();
  const schema = uniqueSchema('agentd_bench');
  const env = {
    REDIS_URL: SHARED_REDIS_URL,
    DATABASE_URL: TEST_DATABASE_URL,
    AGENTD_REDIS__KEY_PREFIX: prefix,
    AGENTD_STORAGE__SCHEMA: schema,
    AGENTD_DISTRIBUTED__ENABLED: 'true',
  };
  const nodes: Started[] = [];
  for (let i = 0; i < nodeCount; i++) {
    nodes.push(await startAgentdProcess(dir.path, `node${nodeCount}-${i}`, base, env, [], 60_000));
  }
  const latencies: number[] = [];
  let failed = 0;
  let next = 0;
  const body = (i: number) => JSON.stringify({ agent: 'bench', input: `task ${i}`, wait: 60_000 });
  const client = async (): Promise<void> => {
    while (next < tasks) {
      const i = next++;
      const node = nodes[i % nodes.length]!;
      const started = performance.now();
      const res = await request(`${node.match}/v1/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: body(i),
      });
      const text = await res.body.text();
      latencies.push(performance.now() - started);
      if (res.statusCode !== 200 || !text.includes('"succeeded"')) failed++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, client));
  const seconds = (performance.now() - started) / 1000;
  for (const node of nodes) await node.stop();
  await dropPrefix(SHARED_REDIS_URL, prefix);
  await dropSchema(schema);
  return {
    nodes: nodeCount,
    tasks_per_second: round(tasks / seconds),
    p50_ms: round(median(latencies)),
    p99_ms: round(percentile(latencies, 99)),
    failed,
  };
}

const cost = [await costPerTask('local'), await costPerTask('distributed')];
const scaling: ThroughputRow[] = [];
for (const count of [1, 2, 3]) scaling.push(await throughput(count));
await mock.stop();
dir.remove();

const local = cost[0]!;
const distributed = cost[1]!;
const result = {
  machine: describeMachine(),
  settings: { tasks, sequential, clients },
  cost_per_task: cost,
  added_latency_p50_ms: round(distributed.p50_ms - local.p50_ms),
  throughput: scaling,
};
const path = writeResult('distributed', result);
const markdown = [
  '## Distributed path (Postgres + BullMQ + Redis Streams)',
  '',
  `Measured by \`npm run bench:distributed\` on ${result.machine.cores} cores shared with Redis, Postgres, the mock and other work (figures are provisional under that load). Tasks are one mock call each (12 tokens).`,
  '',
  'Cost per task, one node, tasks one after another:',
  '',
  table(
    ['mode', 'p50 ms', 'p99 ms', 'Redis commands / task'],
    cost.map((c) => [c.mode, c.p50_ms, c.p99_ms, c.redis_commands_per_task]),
  ),
  '',
  `Added latency of the distributed path at p50: ${result.added_latency_p50_ms} ms.`,
  '',
  `Throughput, ${tasks} tasks from ${clients} concurrent clients (round-robin, each waits for its task):`,
  '',
  table(
    ['nodes', 'tasks/s', 'p50 ms', 'p99 ms', 'failed'],
    scaling.map((r) => [r.nodes, r.tasks_per_second, r.p50_ms, r.p99_ms, r.failed]),
  ),
].join('\n');
updateDocs('distributed', markdown);
console.log(markdown);
console.log(`\nresults: ${path}`);
