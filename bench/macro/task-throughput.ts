/**
 * `npm run bench`: the core figures, measured side by side in one run on 127.0.0.1.
 *   1. the mock model directly          2. a minimal pass-through proxy (the ceiling)
 *   3. agentd running a one-call task   4. agentd running a task with one tool round trip
 * For each: throughput at 32 connections with the CPU time the server the load generator talks to
 * spends per request (and how much of the machine stayed idle), and latency p50/p99 at one
 * connection. Latency requests take turns of 100 between the targets and throughput rounds
 * alternate them, so drift on this shared machine hits all of them alike; medians of the rounds
 * are reported, with agentd's added latency over the mock and its ratio to the proxy.
 *
 * Flags: --rounds N (3)  --seconds S (5)  --requests N (2000)
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { tempDir } from '../../test/helpers/agentd.js';
import { mockBackedConfig, startAgentdProcess, startMockProcess } from '../lib/agentd.js';
import {
  type LatencyResult,
  measureLatencyInterleaved,
  measureThroughputAndCpu,
  type Target,
  type ThroughputAndCpu,
} from '../lib/load.js';
import { describeMachine } from '../lib/machine.js';
import { startNode } from '../lib/processes.js';
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
const root = new URL('../..', import.meta.url).pathname;

const dir = tempDir('agentd-bench-');
const mock = await startMockProcess();
const proxy = await startNode(
  ['--import', 'tsx', join(root, 'bench/macro/passthrough-proxy.ts'), mock.match],
  /listening on (http:\/\/\S+)/,
);
const agentd = await startAgentdProcess(dir.path, 'bench', mockBackedConfig(mock.match));

const chat = JSON.stringify({
  model: 'mock',
  messages: [{ role: 'user', content: 'hello' }],
  stream: true,
  stream_options: { include_usage: true },
});
const succeeded = (status: number, body: string) => status === 200 && body.includes('"succeeded"');
/** Each target with the process that answers its load generator. */
const targets: (Target & { pid: number })[] = [
  {
    name: 'mock direct',
    url: mock.match,
    path: '/v1/chat/completions',
    body: chat,
    validate: (s, b) => s === 200 && b.includes('[DONE]'),
    pid: mock.child.pid!,
  },
  {
    name: 'pass-through proxy',
    url: proxy.match,
    path: '/v1/chat/completions',
    body: chat,
    validate: (s, b) => s === 200 && b.includes('[DONE]'),
    pid: proxy.child.pid!,
  },
  {
    name: 'agentd one-call task',
    url: agentd.match,
    path: '/v1/agents/bench/run',
    body: JSON.stringify({ input: 'hello' }),
    validate: succeeded,
    pid: agentd.child.pid!,
  },
  {
    name: 'agentd tool round trip',
    url: agentd.match,
    path: '/v1/agents/assistant/run',
    body: JSON.stringify({ input: 'What is 17*23?' }),
    validate: (s, b) => succeeded(s, b) && b.includes('391'),
    pid: agentd.child.pid!,
  },
];

const latency = new Map<string, LatencyResult[]>();
const throughput = new Map<string, ThroughputAndCpu[]>();
try {
  for (let round = 1; round <= rounds; round++) {
    const lats = await measureLatencyInterleaved(
      targets,
      requests,
      Math.min(500, requests),
      'x-agentd-overhead-ms',
    );
    for (const [t, target] of targets.entries()) {
      const lat = lats[t]!;
      const thr = await measureThroughputAndCpu(target, 32, seconds, target.pid);
      latency.set(target.name, [...(latency.get(target.name) ?? []), lat]);
      throughput.set(target.name, [...(throughput.get(target.name) ?? []), thr]);
      process.stderr.write(
        `round ${round} ${target.name}: p50 ${round3(lat.p50_ms)} ms, p99 ${round3(lat.p99_ms)} ms, ${Math.round(thr.requests_per_sec)} req/s, server ${Math.round(thr.server_cpu_us_per_request)} µs CPU/request (errors ${thr.errors}, non-2xx ${thr.non2xx})\n`,
      );
    }
  }
} finally {
  await agentd.stop();
  await proxy.stop();
  await mock.stop();
  dir.remove();
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

const summary = targets.map((target) => {
  const lats = latency.get(target.name)!;
  const thrs = throughput.get(target.name)!;
  const overhead = lats.map((l) => l.header_p50_ms).filter((v): v is number => v !== undefined);
  return {
    target: target.name,
    requests_per_sec: median(thrs.map((t) => t.requests_per_sec)),
    server_cpu_us_per_request: median(thrs.map((t) => t.server_cpu_us_per_request)),
    machine_idle: median(thrs.map((t) => t.machine_idle)),
    p50_ms: median(lats.map((l) => l.p50_ms)),
    p99_ms: median(lats.map((l) => l.p99_ms)),
    errors: thrs.reduce((sum, t) => sum + t.errors + t.non2xx, 0),
    ...(overhead.length > 0 ? { overhead_header_p50_ms: median(overhead) } : {}),
  };
});
const [direct, proxied, oneCall, toolTrip] = summary as [
  (typeof summary)[0],
  (typeof summary)[0],
  (typeof summary)[0],
  (typeof summary)[0],
];
const derived = {
  one_call_vs_proxy_throughput: oneCall.requests_per_sec / proxied.requests_per_sec,
  one_call_vs_proxy_cpu_per_request: oneCall.server_cpu_us_per_request / proxied.server_cpu_us_per_request,
  one_call_added_p50_ms: oneCall.p50_ms - direct.p50_ms,
  one_call_added_p99_ms: oneCall.p99_ms - direct.p99_ms,
  proxy_added_p50_ms: proxied.p50_ms - direct.p50_ms,
  tool_trip_added_p50_ms: toolTrip.p50_ms - 2 * direct.p50_ms,
  tool_trip_added_p99_ms: toolTrip.p99_ms - 2 * direct.p99_ms,
};

const rows = summary.map((s) => [
  s.target,
  Math.round(s.requests_per_sec),
  Math.round(s.server_cpu_us_per_request),
  `${Math.round(s.machine_idle * 100)} %`,
  round(s.p50_ms),
  round(s.p99_ms),
  s.target.startsWith('agentd')
    ? round(s.p50_ms - (s.target.includes('tool') ? 2 : 1) * direct.p50_ms)
    : s.target === 'pass-through proxy'
      ? round(s.p50_ms - direct.p50_ms)
      : '—',
  s.overhead_header_p50_ms === undefined ? '—' : round(s.overhead_header_p50_ms),
  s.errors,
]);
const header = [
  'target',
  'req/s @32',
  'server CPU µs/req @32',
  'machine idle @32',
  'p50 ms @1',
  'p99 ms @1',
  'added p50 ms',
  'x-agentd-overhead-ms p50',
  'errors',
];
const machine = describeMachine();
const text = [
  table(header, rows),
  '',
  `agentd one-call throughput / proxy: **${round(derived.one_call_vs_proxy_throughput)}×** (target ≥ 0.7); added latency over the mock at one connection: p50 **${round(derived.one_call_added_p50_ms)} ms** (target ≤ 0.5), p99 **${round(derived.one_call_added_p99_ms)} ms** (target ≤ 2). Tool round trip (two model calls + calculator): added p50 ${round(derived.tool_trip_added_p50_ms)} ms. Under load agentd's server spends ${round(derived.one_call_vs_proxy_cpu_per_request)}× the proxy's CPU per request; "server CPU" is the process the load generator talks to (for the mock row, the mock), read from /proc (user + system, all its threads).`,
  '',
  `Medians of ${rounds} alternating rounds; ${requests} sequential requests per target and round, the targets taking turns of 100 requests, ${seconds} s per throughput run (autocannon). ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${String(machine.date).slice(0, 10)}. Command: \`npm run bench\`.`,
].join('\n');
process.stdout.write(`\n${text}\n`);
const file = writeResult('core', {
  machine,
  rounds,
  seconds,
  requests,
  summary,
  derived,
  raw: Object.fromEntries([...latency].map(([k, v]) => [k, { latency: v, throughput: throughput.get(k) }])),
});
updateDocs('core', text);
process.stdout.write(`\nresults: ${file}\n`);
