/**
 * `npm run bench:gateway`: agentd's OpenAI-compatible gateway mode (`POST /v1/chat/completions`
 * with a model) against the mock called directly, through a minimal pass-through proxy and through
 * Portkey's open-source gateway (`@portkey-ai/gateway`, installed in bench/gateway-peers), side
 * by side in alternating rounds: added latency p50/p99 at one connection (streamed request, whole
 * answer; the targets take turns of 100 requests), throughput at 32 connections with the
 * answering process's CPU time per request, and time-to-first-token overhead when streaming; then
 * the same for a non-streamed completion. Portkey is in the non-streamed table only: its
 * streaming path fails on Node 20 (see docs/benchmarks.md).
 * Targets: added p99 ≤ 0.5 ms at one connection; throughput ≥ 0.8× the proxy's.
 * Flags: --rounds N (3) --seconds S (5) --requests N (2000)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from 'undici';
import { tempDir } from '../../test/helpers/agentd.js';
import { mockBackedConfig, startAgentdProcess, startMockProcess } from '../lib/agentd.js';
import { measureLatencyInterleaved, measureThroughputAndCpu, type Target } from '../lib/load.js';
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

/** Time to the first content chunk of a streamed completion, sequentially on one connection. */
async function measureTtft(target: Target, count: number, warmup: number): Promise<number[]> {
  const client = new Client(target.url, { pipelining: 1 });
  const times: number[] = [];
  try {
    for (let i = 0; i < warmup + count; i++) {
      const started = process.hrtime.bigint();
      const response = await client.request({
        path: target.path,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: target.body,
      });
      let first: number | undefined;
      let text = '';
      for await (const chunk of response.body) {
        text += chunk.toString();
        if (first === undefined && text.includes('"content":"agentd'))
          first = Number(process.hrtime.bigint() - started) / 1e6;
      }
      if (first === undefined || !text.includes('[DONE]'))
        throw new Error(`${target.name}: no content: ${text.slice(0, 300)}`);
      if (i >= warmup) times.push(first);
    }
  } finally {
    await client.close();
  }
  return times;
}

const peers = join(root, 'bench/gateway-peers');
const portkeyDir = join(peers, 'node_modules/@portkey-ai/gateway');

/** Installs the gateway peers on first use (their own package, so agentd's install stays small). */
function installPeers(): string | undefined {
  if (!existsSync(portkeyDir)) {
    process.stderr.write('installing the gateway peers (npm ci in bench/gateway-peers)…\n');
    const result = spawnSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], {
      cwd: peers,
      stdio: 'inherit',
    });
    if (result.status !== 0 || !existsSync(portkeyDir)) return undefined;
  }
  return (JSON.parse(readFileSync(join(portkeyDir, 'package.json'), 'utf8')) as { version: string }).version;
}

/** A TCP port free on loopback right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const dir = tempDir('agentd-bench-gateway-');
const portkeyVersion = installPeers();
const mock = await startMockProcess();
const proxy = await startNode(
  ['--import', 'tsx', join(root, 'bench/macro/passthrough-proxy.ts'), mock.match],
  /listening on (http:\/\/\S+)/,
);
const agentd = await startAgentdProcess(dir.path, 'gateway', mockBackedConfig(mock.match));
// Portkey's Node server: `--headless` skips its log UI; it is told the upstream per request. It
// prints the port it was given, so it gets a free one rather than 0.
const portkey =
  portkeyVersion === undefined
    ? undefined
    : await startNode(
        [join(portkeyDir, 'build/start-server.js'), `--port=${await freePort()}`, '--headless'],
        /running at:[^h]*(http:\/\/localhost:\d+)/,
        { env: { NODE_ENV: 'production' } },
      );

const body = (model: string) =>
  JSON.stringify({
    model,
    messages: [{ role: 'user', content: 'hello' }],
    stream: true,
    stream_options: { include_usage: true },
  });
const wholeBody = (model: string) =>
  JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }] });
const done = (status: number, text: string) => status === 200 && text.includes('[DONE]');
const answered = (status: number, text: string) => status === 200 && text.includes('"finish_reason":"stop"');
const portkeyHeaders = {
  'x-portkey-provider': 'openai',
  'x-portkey-custom-host': `${mock.match}/v1`,
  authorization: 'Bearer unused',
};
const wholeTargets: Target[] = [
  {
    name: 'mock direct',
    url: mock.match,
    path: '/v1/chat/completions',
    body: wholeBody('mock'),
    validate: answered,
  },
  {
    name: 'pass-through proxy',
    url: proxy.match,
    path: '/v1/chat/completions',
    body: wholeBody('mock'),
    validate: answered,
  },
  {
    name: 'agentd gateway',
    url: agentd.match,
    path: '/v1/chat/completions',
    body: wholeBody('mock-medium'),
    validate: answered,
  },
];
if (portkey !== undefined)
  wholeTargets.push({
    name: `Portkey gateway ${portkeyVersion}`,
    url: portkey.match.replace('localhost', '127.0.0.1'),
    path: '/v1/chat/completions',
    body: wholeBody('mock'),
    headers: portkeyHeaders,
    validate: answered,
  });
const targets: Target[] = [
  { name: 'mock direct', url: mock.match, path: '/v1/chat/completions', body: body('mock'), validate: done },
  {
    name: 'pass-through proxy',
    url: proxy.match,
    path: '/v1/chat/completions',
    body: body('mock'),
    validate: done,
  },
  {
    name: 'agentd gateway',
    url: agentd.match,
    path: '/v1/chat/completions',
    body: body('mock-medium'),
    validate: done,
  },
];

/** The process that answers each target's load generator, for its CPU time per request. */
const pids = new Map<string, number>([
  ['mock direct', mock.child.pid!],
  ['pass-through proxy', proxy.child.pid!],
  ['agentd gateway', agentd.child.pid!],
]);
if (portkey !== undefined) pids.set(`Portkey gateway ${portkeyVersion}`, portkey.child.pid!);

interface Samples {
  rps: number[];
  /** CPU µs per request of the process the load generator talks to. */
  cpu: number[];
  p50: number[];
  p99: number[];
  ttft50: number[];
}
const samples = new Map<string, Samples>();
const wholeSamples = new Map<string, Samples>();
try {
  for (let r = 1; r <= rounds; r++) {
    const streamedLatency = await measureLatencyInterleaved(targets, requests, Math.min(500, requests));
    for (const [t, target] of targets.entries()) {
      const latency = streamedLatency[t]!;
      const ttft = await measureTtft(target, Math.min(500, requests), 100);
      const throughput = await measureThroughputAndCpu(target, 32, seconds, pids.get(target.name)!);
      if (throughput.errors > 0 || throughput.non2xx > 0)
        throw new Error(
          `${target.name}: ${throughput.errors} errors, ${throughput.non2xx} non-2xx under load`,
        );
      const entry = samples.get(target.name) ?? { rps: [], cpu: [], p50: [], p99: [], ttft50: [] };
      entry.rps.push(throughput.requests_per_sec);
      entry.cpu.push(throughput.server_cpu_us_per_request);
      entry.p50.push(latency.p50_ms);
      entry.p99.push(latency.p99_ms);
      entry.ttft50.push(median(ttft));
      samples.set(target.name, entry);
      process.stderr.write(
        `round ${r} ${target.name}: ${Math.round(throughput.requests_per_sec)} req/s, ${Math.round(throughput.server_cpu_us_per_request)} µs CPU/request, p50 ${round(latency.p50_ms)} ms, p99 ${round(latency.p99_ms)} ms, ttft ${round(median(ttft))} ms\n`,
      );
    }
    const wholeLatency = await measureLatencyInterleaved(wholeTargets, requests, Math.min(500, requests));
    for (const [t, target] of wholeTargets.entries()) {
      const latency = wholeLatency[t]!;
      const throughput = await measureThroughputAndCpu(target, 32, seconds, pids.get(target.name)!);
      if (throughput.errors > 0 || throughput.non2xx > 0)
        throw new Error(
          `${target.name}: ${throughput.errors} errors, ${throughput.non2xx} non-2xx under load (whole)`,
        );
      const entry = wholeSamples.get(target.name) ?? { rps: [], cpu: [], p50: [], p99: [], ttft50: [] };
      entry.rps.push(throughput.requests_per_sec);
      entry.cpu.push(throughput.server_cpu_us_per_request);
      entry.p50.push(latency.p50_ms);
      entry.p99.push(latency.p99_ms);
      wholeSamples.set(target.name, entry);
      process.stderr.write(
        `round ${r} ${target.name} (whole): ${Math.round(throughput.requests_per_sec)} req/s, ${Math.round(throughput.server_cpu_us_per_request)} µs CPU/request, p50 ${round(latency.p50_ms)} ms, p99 ${round(latency.p99_ms)} ms\n`,
      );
    }
  }
} finally {
  await portkey?.stop();
  await agentd.stop();
  await proxy.stop();
  await mock.stop();
  dir.remove();
}

const direct = samples.get('mock direct')!;
const viaProxy = samples.get('pass-through proxy')!;
const rows = [...samples].map(([name, s]) => [
  name,
  Math.round(median(s.rps)),
  round(median(s.rps) / median(viaProxy.rps)),
  Math.round(median(s.cpu)),
  round(median(s.p50)),
  round(median(s.p99)),
  name === 'mock direct' ? '—' : round(median(s.p50) - median(direct.p50)),
  name === 'mock direct' ? '—' : round(median(s.p99) - median(direct.p99)),
  name === 'mock direct' ? '—' : round(median(s.ttft50) - median(direct.ttft50)),
]);
const wholeDirect = wholeSamples.get('mock direct')!;
const wholeProxy = wholeSamples.get('pass-through proxy')!;
const wholeRows = [...wholeSamples].map(([name, s]) => [
  name,
  Math.round(median(s.rps)),
  round(median(s.rps) / median(wholeProxy.rps)),
  Math.round(median(s.cpu)),
  round(median(s.p50)),
  round(median(s.p99)),
  name === 'mock direct' ? '—' : round(median(s.p50) - median(wholeDirect.p50)),
  name === 'mock direct' ? '—' : round(median(s.p99) - median(wholeDirect.p99)),
]);
const portkeyNote =
  portkeyVersion === undefined
    ? "Portkey's gateway is not in this run: `npm ci` in bench/gateway-peers failed."
    : `Portkey's gateway (${portkeyVersion}, its Node server, \`x-portkey-provider: openai\` with \`x-portkey-custom-host\` at the mock) is in the non-streamed table only: on Node 20 its streaming path answers \`{"status":"failure","message":"Something went wrong"}\` (it logs \`TypeError: immutable\` from \`Headers.append\` on the provider's response), and it waits 25 ms before the first streamed chunk by design.`;
const text = [
  table(
    [
      'streamed chat completion',
      'req/s @32',
      'vs proxy',
      'server CPU µs/req @32',
      'p50 ms @1',
      'p99 ms @1',
      'added p50 ms',
      'added p99 ms',
      'added TTFT ms',
    ],
    rows,
  ),
  '',
  table(
    [
      'whole (non-streamed) completion',
      'req/s @32',
      'vs proxy',
      'server CPU µs/req @32',
      'p50 ms @1',
      'p99 ms @1',
      'added p50 ms',
      'added p99 ms',
    ],
    wholeRows,
  ),
  '',
  `Gateway mode through admission, router (breaker, retry policy) and chunk pass-through (a whole reply: the provider's bytes); "added" is against calling the mock directly, in latency runs where the targets take turns of 100 requests; "server CPU" is the CPU time per request (/proc, user + system, all threads) of the process the load generator talks to, which sets the throughput of a server bound by its main thread. Medians of ${rounds} alternating rounds, ${String(describeMachine().cpu)}, 2 cores, ${process.version}, ${new Date().toISOString().slice(0, 10)}. Targets: added p99 ≤ 0.5 ms at one connection, throughput ≥ 0.8× the proxy. ${portkeyNote} Command: \`npm run bench:gateway\`.`,
].join('\n');
process.stdout.write(`\n${text}\n`);
writeResult('gateway', {
  machine: describeMachine(),
  rounds,
  seconds,
  requests,
  portkey: portkeyVersion ?? null,
  samples: Object.fromEntries(samples),
  whole: Object.fromEntries(wholeSamples),
});
updateDocs('gateway', text);
