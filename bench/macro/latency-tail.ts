/**
 * `npm run bench:tail`: where the one-connection latency tail comes from. Whole (non-streamed)
 * chat completions sent one at a time to the mock directly, through the pass-through proxy and
 * through agentd's gateway, in alternating rounds. For each: p50/p90/p99/p99.9, how many requests
 * took over 1 ms, how many of those came right after another slow one (runs of slow requests are
 * the host stalling the machine, not per-request work), and the scavenges agentd ran meanwhile
 * (`--trace-gc`): GC can only be in the p99 if it runs for more than 1 % of the requests.
 *
 * Flags: --rounds N (3) --requests N (3000) --warmup N (500)
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from 'undici';
import { tempDir } from '../../test/helpers/agentd.js';
import { mockBackedConfig, startAgentdProcess, startMockProcess } from '../lib/agentd.js';
import { describeMachine } from '../lib/machine.js';
import { startNode } from '../lib/processes.js';
import { table, writeResult } from '../lib/report.js';
import { median, percentile, round } from '../lib/stats.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    requests: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '500' },
  },
});
const rounds = Number(values.rounds);
const requests = Number(values.requests);
const warmup = Number(values.warmup);
const SLOW_MS = 1;

const root = new URL('../..', import.meta.url).pathname;
const dir = tempDir('agentd-bench-tail-');
const mock = await startMockProcess();
const proxy = await startNode(
  ['--import', 'tsx', join(root, 'bench/macro/passthrough-proxy.ts'), mock.match],
  /listening on (http:\/\/\S+)/,
);
const agentd = await startAgentdProcess(dir.path, 'tail', mockBackedConfig(mock.match), {}, ['--trace-gc']);
let scavenges = 0;
agentd.child.stdout!.on('data', (chunk: Buffer) => {
  scavenges += chunk.toString().split('Scavenge').length - 1;
});

const body = (model: string) => JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }] });
const targets = [
  { name: 'mock direct', url: mock.match, body: body('mock') },
  { name: 'pass-through proxy', url: proxy.match, body: body('mock') },
  { name: 'agentd gateway', url: agentd.match, body: body('mock-medium') },
];

/** Sequential request times in ms on one keep-alive connection, after `warmup` untimed ones. */
async function sequential(url: string, payload: string): Promise<number[]> {
  const client = new Client(url, { pipelining: 1 });
  const times: number[] = [];
  try {
    for (let i = 0; i < warmup + requests; i++) {
      const started = process.hrtime.bigint();
      const response = await client.request({
        path: '/v1/chat/completions',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: payload,
      });
      const text = await response.body.text();
      if (response.statusCode !== 200)
        throw new Error(`${url}: ${response.statusCode} ${text.slice(0, 200)}`);
      if (i >= warmup) times.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
  } finally {
    await client.close();
  }
  return times;
}

interface Round {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  slow: number;
  /** Slow requests that came right after another slow one. */
  slowAfterSlow: number;
  /** agentd only: scavenges during the timed requests. */
  scavenges?: number;
}

const samples = new Map<string, Round[]>();
try {
  for (let r = 1; r <= rounds; r++) {
    for (const target of targets) {
      const before = scavenges;
      const times = await sequential(target.url, target.body);
      let slow = 0;
      let slowAfterSlow = 0;
      for (let i = 0; i < times.length; i++) {
        if (times[i]! <= SLOW_MS) continue;
        slow++;
        if (i > 0 && times[i - 1]! > SLOW_MS) slowAfterSlow++;
      }
      const result: Round = {
        p50: percentile(times, 50),
        p90: percentile(times, 90),
        p99: percentile(times, 99),
        p999: percentile(times, 99.9),
        slow,
        slowAfterSlow,
      };
      // Counted from agentd's output, which arrives a little after the requests: the count of
      // a round may include the tail of its last scavenge line.
      if (target.url === agentd.match) result.scavenges = scavenges - before;
      samples.set(target.name, [...(samples.get(target.name) ?? []), result]);
      process.stderr.write(
        `round ${r} ${target.name}: p50 ${round(result.p50)} p99 ${round(result.p99)} ms, ${slow} over ${SLOW_MS} ms (${slowAfterSlow} right after another)${result.scavenges === undefined ? '' : `, ${result.scavenges} scavenges`}\n`,
      );
    }
  }
} finally {
  await agentd.stop();
  await proxy.stop();
  await mock.stop();
  dir.remove();
}

const medianOf = (name: string, pick: (round: Round) => number) =>
  round(median(samples.get(name)!.map(pick)));
const rangeOf = (name: string, pick: (round: Round) => number) => {
  const all = samples.get(name)!.map(pick);
  return `${Math.min(...all)}–${Math.max(...all)}`;
};
const rows = targets.map(({ name }) => [
  name,
  medianOf(name, (s) => s.p50),
  medianOf(name, (s) => s.p90),
  medianOf(name, (s) => s.p99),
  medianOf(name, (s) => s.p999),
  rangeOf(name, (s) => s.slow),
  rangeOf(name, (s) => s.slowAfterSlow),
  name === 'agentd gateway' ? rangeOf(name, (s) => s.scavenges ?? 0) : '—',
]);
console.log(
  table(
    [
      'whole completion, one connection',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'p99.9 ms',
      `over ${SLOW_MS} ms (per round)`,
      'of those right after another',
      'scavenges',
    ],
    rows,
  ),
);
console.log(
  `\nMedians of ${rounds} alternating rounds (ranges for the counts) of ${requests} sequential requests after ${warmup} of warm-up. ${String(describeMachine().cpu)}, ${process.version}, ${new Date().toISOString().slice(0, 10)}. Command: \`npm run bench:tail\`.`,
);
console.log(
  `results: ${writeResult('tail', { machine: describeMachine(), rounds, requests, warmup, samples: Object.fromEntries(samples) })}`,
);
