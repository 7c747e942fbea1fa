/**
 * `npm run bench:transport`: the HTTP/1.1 client transports an agentd provider could call an
 * OpenAI-compatible server with, side by side in one run against agentd's mock (its own process):
 * undici's `Pool.dispatch` (as src/llm/openai.ts uses it), `node:http` with a keep-alive Agent,
 * agentd's `Http1Pool`, and a bare `net.Socket` (the floor, memory only). Two figures:
 *
 * 1. RSS per in-flight request: a fresh process per (subject, count, round) opens 1,000 or 10,000
 *    streamed requests against the slow streaming mock (started as `bench:peers` starts it; the
 *    model name stretches each stream, see SLOW_MODEL), at most 256 awaiting their response head
 *    at a time, waits until each got its first body bytes, and reads (RSS after − RSS before) ÷ N,
 *    both after a GC. A request that ended or failed before the reading voids the process.
 * 2. CPU per request and requests/s with keep-alive, 16 in flight, fast mock, non-streamed and
 *    streamed replies: one process per subject, warmed up, then alternating rounds; CPU is the
 *    client process's `process.cpuUsage()` over the round.
 *
 * Options: --rounds N (6)  --requests N (4000)  --sizes 1000,10000  --memory-rounds 3,2 (per size)  --open-window N (256)
 *          --slow-model 'mock?interval_ms=5000&tokens=20' (the slow mock's scenario per request)
 *          --only undici,node-http,http1pool,net-socket
 */
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startMockProcess } from '../lib/agentd.js';
import { describeMachine } from '../lib/machine.js';
import { type DriverOutcome, runDriver } from '../lib/processes.js';
import { table, writeResult } from '../lib/report.js';
import { median, round } from '../lib/stats.js';
import type { ClientRequest, MemoryResult, ReplyKind, RoundResult } from './provider-transport-client.js';
import { SUBJECT_LABELS, SUBJECTS, type SubjectName } from './provider-transport-subjects.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '6' },
    requests: { type: 'string', default: '4000' },
    sizes: { type: 'string', default: '1000,10000' },
    'memory-rounds': { type: 'string', default: '3,2' },
    'open-window': { type: 'string', default: '256' },
    'slow-model': { type: 'string', default: 'mock?interval_ms=5000&tokens=20' },
    only: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const REQUESTS = Number(values.requests);
const SIZES = values.sizes.split(',').map(Number);
/** Processes per subject at each size (10,000 in flight takes ~15 s a process). */
const MEMORY_ROUNDS = values['memory-rounds'].split(',').map(Number);
const memoryRounds = (sizeIndex: number): number =>
  MEMORY_ROUNDS[Math.min(sizeIndex, MEMORY_ROUNDS.length - 1)]!;
const subjects = (values.only?.split(',') ?? [...SUBJECTS]) as SubjectName[];
for (const subject of subjects)
  if (!SUBJECTS.includes(subject)) throw new Error(`unknown subject ${subject}: ${SUBJECTS.join(', ')}`);
/** The floor opens one socket per request and never reuses one: memory only. */
const throughputSubjects = subjects.filter((subject) => subject !== 'net-socket');

/** bench:peers' slow streaming mock (its 10,000-in-flight workload): first token after 1 s, then one every 200 ms. */
const SLOW_MOCK = ['--ttft-ms', '1000', '--interval-ms', '200', '--tokens', '5'];
/**
 * The same first token after 1 s, then one every 5 s (≈ 96 s per stream), so that every request
 * is still open when the last one gets its first bytes (the client exits right after the reading).
 * bench:peers' 200 ms cadence is 50,000 writes/s for the mock at 10,000 in flight: on this shared
 * 2-core machine the mock then fell behind whenever others were busy (opening 10,000 requests took
 * up to 100 s, a full run 9 minutes); `--slow-model 'mock?tokens=300'` runs it (≈ 61 s per stream).
 */
const SLOW_MODEL = values['slow-model'];
const CONCURRENCY = 16;
/** Memory: most requests opened and without response headers yet (below the mock's listen backlog, 511). */
const OPEN_WINDOW = Number(values['open-window']);
const CLIENT = join(new URL('.', import.meta.url).pathname, 'provider-transport-client.ts');

const machine = describeMachine();
const loadBefore = (await import('node:os')).loadavg();
const fast = await startMockProcess();
const slow = await startMockProcess(SLOW_MOCK);
const began = performance.now();

function clientRequest(mode: ClientRequest['mode'], subject: SubjectName, inflight: number): ClientRequest {
  return {
    mode,
    subject,
    fastOrigin: fast.match,
    slowOrigin: slow.match,
    inflight,
    slowModel: SLOW_MODEL,
    concurrency: CONCURRENCY,
    warmup: mode === 'memory' ? 200 : 2000,
    openWindow: OPEN_WINDOW,
    deadlineMs: 60_000,
  };
}

/** Rotates the subject order each round so no subject always runs first (or right after another). */
function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

// 1. Memory: one fresh process per (size, round, subject).
const memory: Record<string, Record<SubjectName, DriverOutcome<MemoryResult>[]>> = {};
for (const [sizeIndex, size] of SIZES.entries()) {
  memory[size] = {} as Record<SubjectName, DriverOutcome<MemoryResult>[]>;
  for (let r = 0; r < memoryRounds(sizeIndex); r++) {
    for (const subject of rotate(subjects, r)) {
      const outcome = await runDriver<MemoryResult>(
        ['--expose-gc', '--import', 'tsx', CLIENT, JSON.stringify(clientRequest('memory', subject, size))],
        { cwd: process.cwd(), env: {}, timeoutMs: 120_000 },
      );
      memory[size][subject] = [...(memory[size][subject] ?? []), outcome];
      const line =
        'failed' in outcome
          ? `FAILED ${outcome.failed}`
          : `${round(outcome.rss_kib_per_request)} KiB RSS/request (heap ${round(outcome.heap_kib_per_request)}), ` +
            `${outcome.streaming}/${size} streaming (sent in ${Math.round(outcome.sent_ms)} ms, all streaming at ${Math.round(outcome.open_ms)} ms), ${outcome.ended} ended` +
            (outcome.errors.length > 0 ? `, errors: ${outcome.errors.join('; ')}` : '');
      console.log(`memory ${size} round ${r + 1} ${subject}: ${line}`);
    }
  }
}
await slow.stop();

// 2. Throughput: one long-lived process per subject, alternating rounds.
interface Client {
  child: ChildProcess;
  failed?: string;
}

function startClient(subject: SubjectName): Promise<Client> {
  return new Promise((resolve) => {
    const child = fork(CLIENT, [JSON.stringify(clientRequest('throughput', subject, CONCURRENCY))], {
      execArgv: ['--expose-gc', '--import', 'tsx'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    process.once('exit', () => child.kill('SIGKILL'));
    let output = '';
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('READY\n')) resolve({ child });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => resolve({ child, failed: `exit ${code}: ${output.trim().slice(-300)}` }));
  });
}

function runRound(client: Client, kind: ReplyKind): Promise<RoundResult | { failed: string }> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.child.kill('SIGKILL');
      client.failed = 'a round took over 60 s';
      resolve({ failed: client.failed });
    }, 60_000);
    client.child.once('message', (message) => {
      clearTimeout(timer);
      resolve(message as RoundResult);
    });
    client.child.send({ kind, requests: REQUESTS });
  });
}

const kinds: ReplyKind[] = ['whole', 'stream'];
const rounds: Record<ReplyKind, Record<SubjectName, (RoundResult | { failed: string })[]>> = {
  whole: {} as Record<SubjectName, RoundResult[]>,
  stream: {} as Record<SubjectName, RoundResult[]>,
};
const clients = new Map<SubjectName, Client>();
// Warm-ups one after another, so that they do not compete for the cores.
for (const subject of throughputSubjects) clients.set(subject, await startClient(subject));
for (let r = 0; r < ROUNDS; r++) {
  for (const kind of kinds) {
    for (const subject of rotate(throughputSubjects, r)) {
      const client = clients.get(subject)!;
      const result = client.failed !== undefined ? { failed: client.failed } : await runRound(client, kind);
      rounds[kind][subject] = [...(rounds[kind][subject] ?? []), result];
    }
  }
  console.log(`throughput round ${r + 1}/${ROUNDS} done`);
}
for (const client of clients.values()) if (client.failed === undefined) client.child.send('exit');
await fast.stop();
const loadAfter = (await import('node:os')).loadavg();

// Report.
const ok = <R>(outcomes: DriverOutcome<R>[] | undefined): R[] =>
  (outcomes ?? []).filter((o): o is R => !(typeof o === 'object' && o !== null && 'failed' in o));
const failure = (outcomes: { failed: string }[] | object[] | undefined): string | undefined =>
  (outcomes ?? []).find((o): o is { failed: string } => 'failed' in o)?.failed;

interface MemoryFigure {
  rss_kib_per_request: number;
  rss_min: number;
  rss_max: number;
  heap_kib_per_request: number;
  processes: number;
}
const memoryFigures: Record<number, Partial<Record<SubjectName, MemoryFigure>>> = {};
for (const size of SIZES) {
  memoryFigures[size] = {};
  for (const subject of subjects) {
    const good = ok(memory[size]?.[subject]).filter((m) => m.streaming === m.inflight && m.ended === 0);
    if (good.length === 0) continue;
    const rss = good.map((m) => m.rss_kib_per_request);
    memoryFigures[size][subject] = {
      rss_kib_per_request: median(rss),
      rss_min: Math.min(...rss),
      rss_max: Math.max(...rss),
      heap_kib_per_request: median(good.map((m) => m.heap_kib_per_request)),
      processes: good.length,
    };
  }
}
const largest = SIZES[SIZES.length - 1]!;
const undiciMemory = memoryFigures[largest]?.undici?.rss_kib_per_request;
const fmt = (value: number): string => (Number.isNaN(value) ? 'failed' : String(round(value)));
const rssCell = (f: MemoryFigure | undefined): string =>
  f === undefined
    ? 'failed'
    : f.processes === 1
      ? fmt(f.rss_kib_per_request)
      : `${fmt(f.rss_kib_per_request)} (${fmt(f.rss_min)}–${fmt(f.rss_max)})`;

const memoryTable = table(
  [
    'subject',
    ...SIZES.flatMap((size) => [
      `RSS KiB/request @${size.toLocaleString('en')}`,
      `heap KiB/request @${size.toLocaleString('en')}`,
    ]),
    `RSS ÷ undici @${largest.toLocaleString('en')}`,
  ],
  subjects.map((subject) => {
    const top = memoryFigures[largest]?.[subject];
    return [
      SUBJECT_LABELS[subject],
      ...SIZES.flatMap((size) => {
        const f = memoryFigures[size]?.[subject];
        return [rssCell(f), f === undefined ? 'failed' : fmt(f.heap_kib_per_request)];
      }),
      undiciMemory === undefined || top === undefined
        ? '–'
        : `${round(top.rss_kib_per_request / undiciMemory)}×`,
    ];
  }),
);

interface ThroughputFigure {
  requests_per_sec: number;
  cpu_us_per_request: number;
  errors: number;
  failed?: string;
}
const figures: Record<ReplyKind, Partial<Record<SubjectName, ThroughputFigure>>> = { whole: {}, stream: {} };
for (const kind of kinds)
  for (const subject of throughputSubjects) {
    const good = ok(rounds[kind][subject]);
    figures[kind][subject] = {
      requests_per_sec:
        good.length > 0 ? median(good.map((g) => (g.requests / g.wall_ms) * 1000)) : Number.NaN,
      cpu_us_per_request: good.length > 0 ? median(good.map((g) => g.cpu_us / g.requests)) : Number.NaN,
      errors: good.reduce((sum, g) => sum + g.errors, 0),
      ...(failure(rounds[kind][subject]) !== undefined ? { failed: failure(rounds[kind][subject]) } : {}),
    };
  }
const ratio = (value: number, base: number | undefined): string =>
  base === undefined || !Number.isFinite(value) || !Number.isFinite(base) ? '–' : `${round(value / base)}×`;
const throughputTable = table(
  [
    'subject',
    'non-streamed req/s',
    'CPU µs/req',
    'CPU ÷ undici',
    'streamed req/s',
    'CPU µs/req',
    'CPU ÷ undici',
    'errors',
  ],
  throughputSubjects.map((subject) => {
    const cells: string[] = [SUBJECT_LABELS[subject]];
    let errors = 0;
    for (const kind of kinds) {
      const f = figures[kind][subject]!;
      errors += f.errors;
      cells.push(
        fmt(f.requests_per_sec),
        fmt(f.cpu_us_per_request),
        ratio(f.cpu_us_per_request, figures[kind].undici?.cpu_us_per_request),
      );
    }
    const failed = figures.whole[subject]?.failed ?? figures.stream[subject]?.failed;
    cells.push(failed === undefined ? String(errors) : `${errors}; ${failed.slice(0, 80)}`);
    return cells;
  }),
);

const seconds = (performance.now() - began) / 1000;
const note = (load: number[]): string => load.map((l) => l.toFixed(2)).join(' ');
console.log(
  [
    '',
    `RSS per in-flight request (streamed, slow mock \`${SLOW_MOCK.join(' ')}\`, model \`${SLOW_MODEL}\`; ` +
      `median (nearest rank, so the lower of two) and range of ${SIZES.map((size, i) => `${memoryRounds(i)} at ${size}`).join(', ')} processes per cell):`,
    '',
    memoryTable,
    '',
    `Keep-alive, ${CONCURRENCY} in flight, fast mock; medians of ${ROUNDS} alternating rounds × ${REQUESTS} requests:`,
    '',
    throughputTable,
    '',
    `${String(machine.cpu)}, ${String(machine.cores)} cores, Node ${String(machine.node)}; load average ` +
      `${note(loadBefore)} before, ${note(loadAfter)} after; ${Math.round(seconds)} s. Command: \`npm run bench:transport\`.`,
  ].join('\n'),
);
const path = writeResult('transport', {
  machine,
  load_average: { before: loadBefore, after: loadAfter },
  seconds,
  slow_mock: SLOW_MOCK,
  slow_model: SLOW_MODEL,
  concurrency: CONCURRENCY,
  rounds: ROUNDS,
  requests_per_round: REQUESTS,
  memory_rounds: SIZES.map((_, i) => memoryRounds(i)),
  memory: { figures: memoryFigures, raw: memory },
  throughput: { figures, raw: rounds },
});
console.log(`wrote ${path}`);
