/**
 * `npm run bench:concurrency`: how many streaming tasks one agentd process holds at once.
 *
 * The mock model streams slowly over HTTPS with HTTP/2 (one token every --interval-ms, --tokens
 * tokens), so every task stays in flight for tokens × interval. For each level (10k, 50k, 100k
 * by default) a fresh `agentd serve` is warmed up, its idle RSS is read, then the level's tasks
 * are submitted over `POST /v1/tasks` and held. While all of them stream, the benchmark samples
 * `/metrics` each second: resident memory, heap, and the event loop's delay p99 over that second
 * (prom-client's monitorEventLoopDelay, reset at every scrape). Reported per level:
 *   RSS per task   (plateau RSS − idle RSS) / tasks in flight
 *   lag p99        the worst one-second p99 while every task was in flight (and while submitting)
 *   completions/s  tasks / (last completion − first submission); the ideal is tasks / task time
 *
 * Flags: --levels 10000,50000,100000  --interval-ms 2000  --tokens 60  --plateau 10 (seconds)
 */
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { tempDir } from '../../test/helpers/agentd.js';
import { selfSignedCertificate } from '../../test/helpers/tls.js';
import { CLI, startAgentdProcess } from '../lib/agentd.js';
import { describeMachine } from '../lib/machine.js';
import { cpuSeconds, type Started, startNode } from '../lib/processes.js';
import { table, updateDocs, writeResult } from '../lib/report.js';
import { median, round } from '../lib/stats.js';

const { values } = parseArgs({
  options: {
    levels: { type: 'string', default: '10000,50000,100000' },
    'interval-ms': { type: 'string', default: '2000' },
    tokens: { type: 'string', default: '60' },
    plateau: { type: 'string', default: '10' },
    'no-docs': { type: 'boolean', default: false },
  },
});
const levels = values.levels.split(',').map(Number);
const intervalMs = Number(values['interval-ms']);
const tokens = Number(values.tokens);
const plateauSeconds = Number(values.plateau);
const taskSeconds = (intervalMs * tokens) / 1000;
const STREAMS_PER_CONNECTION = 1000;

interface Sample {
  at: number;
  rss: number;
  heapUsed: number;
  lagP99Ms: number;
  active: number;
  queued: number;
  succeeded: number;
  failed: number;
}

interface LevelResult {
  tasks: number;
  idle_rss_mb: number;
  plateau_rss_mb: number;
  rss_per_task_kb: number;
  heap_per_task_kb: number;
  lag_p99_ms_plateau: number;
  lag_p99_ms_submitting: number;
  submit_seconds: number;
  completions_per_sec: number;
  ideal_completions_per_sec: number;
  failed: number;
  cpu_seconds_per_1k_tasks: number;
}

/** Reads the figures this benchmark needs from agentd's Prometheus text. */
function parseMetrics(text: string): Omit<Sample, 'at'> {
  const sample = { rss: 0, heapUsed: 0, lagP99Ms: 0, active: 0, queued: 0, succeeded: 0, failed: 0 };
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const space = line.lastIndexOf(' ');
    const name = line.slice(0, space);
    const value = Number(line.slice(space + 1));
    if (name === 'process_resident_memory_bytes') sample.rss = value;
    else if (name === 'nodejs_heap_size_used_bytes') sample.heapUsed = value;
    else if (name === 'nodejs_eventloop_lag_p99_seconds') sample.lagP99Ms = value * 1000;
    else if (name === 'agentd_active_tasks') sample.active = value;
    else if (name === 'agentd_queue_depth') sample.queued = value;
    else if (name.startsWith('agentd_tasks_total{')) {
      if (name.includes('status="succeeded"')) sample.succeeded += value;
      else sample.failed += value;
    }
  }
  return sample;
}

async function sample(pool: Pool): Promise<Sample> {
  const response = await pool.request({ path: '/metrics', method: 'GET' });
  return { at: performance.now(), ...parseMetrics(await response.body.text()) };
}

/** Submits `count` tasks of `agent`, at most `inFlight` requests at a time; throws on any refusal. */
async function submit(pool: Pool, agent: string, count: number, inFlight: number): Promise<void> {
  const body = JSON.stringify({ agent, input: 'Tell me a long story.' });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      const response = await pool.request({
        path: '/v1/tasks',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      const text = await response.body.text();
      if (response.statusCode !== 202 && response.statusCode !== 200)
        throw new Error(`submit: ${response.statusCode} ${text.slice(0, 300)}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

async function until(
  pool: Pool,
  done: (s: Sample) => boolean,
  timeoutMs: number,
  every: (s: Sample) => void,
) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const s = await sample(pool);
    every(s);
    if (done(s)) return s;
    if (performance.now() > deadline) throw new Error(`timed out; last sample ${JSON.stringify(s)}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function runLevel(mock: Started, caFile: string, dir: string, tasks: number): Promise<LevelResult> {
  const connections = Math.ceil((tasks * 1.1) / STREAMS_PER_CONNECTION) + 4;
  const slowModel = `mock?interval_ms=${intervalMs}&tokens=${tokens}`;
  const agentd = await startAgentdProcess(
    dir,
    `level-${tasks}`,
    {
      providers: {
        mock: {
          type: 'openai',
          base_url: `${mock.match}/v1`,
          api_key: 'unused',
          http2: true,
          max_concurrent_streams: STREAMS_PER_CONNECTION,
          connections,
          ca_file: caFile,
          timeouts: { idle_ms: intervalMs * 5 },
        },
      },
      models: {
        slow: { provider: 'mock', name: slowModel },
        fast: { provider: 'mock', name: `mock?tokens=${tokens}` },
      },
      tiers: { small: ['fast'], medium: ['fast'], large: ['fast'] },
      agents: {
        slow: { model: 'slow', system_prompt: 'You tell long stories.' },
        fast: { model: 'fast', system_prompt: 'You tell long stories.' },
      },
      tasks: {
        max_concurrency: tasks + 1000,
        max_queue: tasks + 1000,
        adaptive_concurrency: { enabled: false },
      },
      // The benchmark reports the lag itself; the guard must not refuse the submission burst.
      limits: { resource: { max_event_loop_lag_ms: 60_000 } },
    },
    {},
    ['--max-old-space-size=16384'],
  );
  const pool = new Pool(agentd.match, { connections: 64 });
  try {
    const pid = agentd.child.pid!;
    // Warm-up: JIT the task path and open the HTTP/2 connections, then let the heap settle.
    await submit(pool, 'fast', 2000, 64);
    await until(
      pool,
      (s) => s.succeeded >= 2000 && s.active === 0,
      60_000,
      () => {},
    );
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const idle = await sample(pool);
    const cpuBefore = await cpuSeconds(pid);

    const submitting: Sample[] = [];
    const started = performance.now();
    let submitted = false;
    const monitor = (async () => {
      while (!submitted) {
        submitting.push(await sample(pool));
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    })();
    await submit(pool, 'slow', tasks, 256);
    submitted = true;
    await monitor;
    const submitSeconds = (performance.now() - started) / 1000;
    if (submitSeconds > taskSeconds * 0.7)
      console.warn(`  submitting took ${round(submitSeconds)} s of a ${taskSeconds} s task: raise --tokens`);

    // The plateau: every task is in flight (none finished yet, none queued).
    const plateau: Sample[] = [];
    const last = await until(
      pool,
      (s) => plateau.length >= plateauSeconds || s.succeeded > 2000,
      (plateauSeconds + 5) * 1000,
      (s) => {
        if (s.active >= tasks && s.queued === 0 && s.succeeded === 2000) plateau.push(s);
      },
    );
    if (plateau.length === 0)
      throw new Error(`never held ${tasks} tasks at once (last: ${JSON.stringify(last)}): raise --tokens`);

    const end = await until(
      pool,
      (s) => s.succeeded + s.failed >= 2000 + tasks,
      (taskSeconds * 3 + 60) * 1000,
      () => {},
    );
    if (end.failed > 0) {
      const response = await pool.request({ path: '/v1/tasks?status=failed&limit=1', method: 'GET' });
      console.warn(
        `  ${end.failed} tasks failed, for example: ${(await response.body.text()).slice(0, 600)}`,
      );
    }
    const elapsed = (end.at - started) / 1000;
    const cpu = (await cpuSeconds(pid)) - cpuBefore;
    const plateauRss = median(plateau.map((s) => s.rss));
    const plateauHeap = median(plateau.map((s) => s.heapUsed));
    return {
      tasks,
      idle_rss_mb: round(idle.rss / 2 ** 20),
      plateau_rss_mb: round(plateauRss / 2 ** 20),
      rss_per_task_kb: round((plateauRss - idle.rss) / tasks / 1024),
      heap_per_task_kb: round((plateauHeap - idle.heapUsed) / tasks / 1024),
      lag_p99_ms_plateau: round(Math.max(...plateau.map((s) => s.lagP99Ms))),
      lag_p99_ms_submitting: round(Math.max(0, ...submitting.map((s) => s.lagP99Ms))),
      submit_seconds: round(submitSeconds),
      completions_per_sec: round(tasks / elapsed),
      ideal_completions_per_sec: round(tasks / taskSeconds),
      failed: end.failed,
      cpu_seconds_per_1k_tasks: round((cpu / tasks) * 1000),
    };
  } finally {
    await pool.close();
    await agentd.stop();
  }
}

const dir = tempDir('agentd-bench-concurrency-');
const certificate = selfSignedCertificate(dir.path);
const mock = await startNode(
  [
    '--max-old-space-size=16384',
    CLI,
    'mock-llm',
    '--port',
    '0',
    '--tls-key',
    certificate.keyFile,
    '--tls-cert',
    certificate.certFile,
  ],
  /listening on (https:\/\/\S+)\/v1/,
);
const results: LevelResult[] = [];
try {
  for (const tasks of levels) {
    console.log(`holding ${tasks} streaming tasks (${tokens} tokens, one every ${intervalMs} ms)…`);
    const result = await runLevel(mock, certificate.certFile, dir.path, tasks);
    console.log(' ', JSON.stringify(result));
    results.push(result);
  }
} finally {
  await mock.stop();
  dir.remove();
}

const machine = describeMachine();
const markdown = [
  table(
    [
      'tasks in flight',
      'RSS per task',
      'heap per task',
      'event-loop lag p99 (holding)',
      'lag p99 (submitting)',
      'completions/s (ideal)',
      'CPU s per 1k tasks',
      'failed',
    ],
    results.map((r) => [
      r.tasks.toLocaleString('en-US'),
      `${r.rss_per_task_kb} KB`,
      `${r.heap_per_task_kb} KB`,
      `${r.lag_p99_ms_plateau} ms`,
      `${r.lag_p99_ms_submitting} ms`,
      `${r.completions_per_sec} (${r.ideal_completions_per_sec})`,
      r.cpu_seconds_per_1k_tasks,
      r.failed,
    ]),
  ),
  '',
  `Each task streams ${tokens} tokens, one every ${intervalMs} ms (${taskSeconds} s), from the mock over HTTPS with HTTP/2 (${STREAMS_PER_CONNECTION} streams per connection). Targets: 100,000 tasks at ≤ 20 KB RSS per task and event-loop lag p99 ≤ 50 ms. ${String(machine.cpu)}, ${String(machine.node)}. Command: \`npm run bench:concurrency\`.`,
].join('\n');
console.log(`\n${markdown}`);
const path = writeResult('concurrency', {
  machine,
  settings: { levels, interval_ms: intervalMs, tokens, plateau_seconds: plateauSeconds },
  results,
});
console.log(`wrote ${path}`);
if (!values['no-docs']) updateDocs('concurrency', markdown);
