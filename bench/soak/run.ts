/**
 * `npm run soak -- --duration 10m` (default 3m): a steady mixed workload (see mix.ts) at about
 * half of measured capacity against one agentd process. Every interval (10 s) it prints and
 * records throughput, latency p50/p99, errors by code, the server's RSS, heap used, event-loop
 * lag p99 and open handles; at the end it compares the last minute with the first minute after
 * warm-up and exits 1 when RSS grew more than 5 %, latency p50 drifted more than 20 %, or any
 * request failed that should not have. Results: bench/results/soak-<date>.json.
 *
 * Flags: --duration 3m  --interval 10s  --warmup (25 % of the duration, at most 15m)  --window 60s
 *        --rate N (req/s; default: calibrated)  --fraction 0.5 (of capacity)  --calibrate 10s
 *        --max-in-flight 512  --max-rss-growth 0.05  --max-latency-drift 0.2
 *        --out <file> (instead of bench/results)
 * Windows shrink for short runs (≤ 25 % of the duration). The warm-up is long because V8 sizes its
 * heap to the allocation rate: at a quiet machine's half capacity the heap (and so RSS) kept rising
 * for 12–15 minutes before it levelled off, with the live heap flat all along.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { tempDir } from '../../test/helpers/agentd.js';
import { startAgentdProcess, startMockProcess } from '../lib/agentd.js';
import { describeMachine } from '../lib/machine.js';
import { writeResult } from '../lib/report.js';
import { percentile, round } from '../lib/stats.js';
import { type Kind, MIX, MixDriver, type Outcome, soakConfig } from './mix.js';

/** "90", "90s", "10m", "1h" → seconds. */
function parseDuration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (match === null) throw new Error(`--${flag}: expected a duration such as 30s, 10m or 1h, got "${text}"`);
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600 }[match[2] ?? 's'] ?? 1;
  return Number(match[1]) * unit;
}

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '3m' },
    interval: { type: 'string', default: '10s' },
    warmup: { type: 'string' },
    window: { type: 'string' },
    rate: { type: 'string' },
    fraction: { type: 'string', default: '0.5' },
    calibrate: { type: 'string', default: '10s' },
    'max-in-flight': { type: 'string', default: '512' },
    'max-rss-growth': { type: 'string', default: '0.05' },
    'max-latency-drift': { type: 'string', default: '0.2' },
    out: { type: 'string' },
  },
});
const duration = parseDuration(values.duration, 'duration');
const interval = parseDuration(values.interval, 'interval');
const warmup =
  values.warmup === undefined ? Math.min(15 * 60, duration * 0.25) : parseDuration(values.warmup, 'warmup');
const window =
  values.window === undefined ? Math.min(60, duration * 0.25) : parseDuration(values.window, 'window');
const maxInFlight = Number(values['max-in-flight']);
const maxRssGrowth = Number(values['max-rss-growth']);
const maxLatencyDrift = Number(values['max-latency-drift']);

interface Sample {
  /** Seconds since the steady load started, at the end of the interval. */
  t: number;
  throughput: number;
  p50_ms: number;
  p99_ms: number;
  completed: number;
  errors: Record<string, number>;
  unexpected: number;
  /** Requests not sent because `max-in-flight` were outstanding (the server fell behind). */
  shed: number;
  rss_mib: number;
  /** Where RSS lives (Linux only, else NaN): anonymous memory (V8's heap and malloc), mapped files, shared memory. */
  rss_anon_mib: number;
  rss_file_mib: number;
  rss_shmem_mib: number;
  heap_used_mib: number;
  /** What V8 has reserved for its heap (used or not), and memory outside it that V8 accounts (Buffers). */
  heap_total_mib: number;
  external_mib: number;
  event_loop_lag_p99_ms: number;
  open_handles: number;
  /** The server's task database on disk (file and WAL). */
  task_db_mib: number;
}

const dir = tempDir('agentd-soak-');
const mock = await startMockProcess();
const agentd = await startAgentdProcess(dir.path, 'soak', soakConfig(mock.match));
const driver = new MixDriver(agentd.match, maxInFlight);
const pid = agentd.child.pid!;
const taskDb = join(dir.path, 'soak.db');

/** The task database's size on disk, with its WAL. */
function taskDbMib(): number {
  const size = (file: string): number => {
    try {
      return statSync(file).size;
    } catch {
      return 0;
    }
  };
  return (size(taskDb) + size(`${taskDb}-wal`)) / 2 ** 20;
}

/** The server's own gauges from /metrics (prom-client's process and Node metrics); RSS from /proc when present. */
async function serverGauges(): Promise<
  Pick<
    Sample,
    | 'rss_mib'
    | 'rss_anon_mib'
    | 'rss_file_mib'
    | 'rss_shmem_mib'
    | 'heap_used_mib'
    | 'heap_total_mib'
    | 'external_mib'
    | 'event_loop_lag_p99_ms'
    | 'open_handles'
  >
> {
  const response = await request(`${agentd.match}/metrics`);
  const text = await response.body.text();
  const gauge = (name: string): number => {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    return match === null ? Number.NaN : Number(match[1]);
  };
  let rss = gauge('process_resident_memory_bytes') / 2 ** 20;
  const parts = { RssAnon: Number.NaN, RssFile: Number.NaN, RssShmem: Number.NaN };
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const mib = (field: string): number => {
      const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
      return kb === null ? Number.NaN : Number(kb[1]) / 1024;
    };
    rss = mib('VmRSS');
    for (const field of Object.keys(parts) as (keyof typeof parts)[]) parts[field] = mib(field);
  } catch {
    // Not Linux: the metric is the same figure, and the parts are unknown.
  }
  return {
    rss_mib: rss,
    rss_anon_mib: parts.RssAnon,
    rss_file_mib: parts.RssFile,
    rss_shmem_mib: parts.RssShmem,
    heap_used_mib: gauge('nodejs_heap_size_used_bytes') / 2 ** 20,
    heap_total_mib: gauge('nodejs_heap_size_total_bytes') / 2 ** 20,
    external_mib: gauge('nodejs_external_memory_bytes') / 2 ** 20,
    event_loop_lag_p99_ms: gauge('nodejs_eventloop_lag_p99_seconds') * 1000,
    open_handles: gauge('nodejs_active_handles_total'),
  };
}

/** Closed loop at 32 in flight for `seconds`: the mix's capacity in requests per second. */
async function calibrate(seconds: number): Promise<number> {
  const until = performance.now() + seconds * 1000;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < until) {
      await driver.send(driver.nextKind());
      done++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: 32 }, worker));
  return done / ((performance.now() - started) / 1000);
}

let exitCode = 0;
try {
  await driver.seedMemories();
  let rate: number;
  let capacity: number | undefined;
  if (values.rate !== undefined) {
    rate = Number(values.rate);
  } else {
    capacity = await calibrate(parseDuration(values.calibrate, 'calibrate'));
    rate = Math.max(1, capacity * Number(values.fraction));
  }
  process.stdout.write(
    `soak: ${duration} s at ${round(rate)} req/s${capacity === undefined ? '' : ` (${values.fraction} of a measured ${round(capacity)} req/s)`}; warm-up ${round(warmup)} s, drift windows ${round(window)} s\n`,
  );

  const samples: Sample[] = [];
  const latencies: Float64Array[] = [];
  let current: Outcome[] = [];
  let shed = 0;
  let inFlight = 0;
  const unexpectedExamples: string[] = [];
  const record = (outcome: Outcome): void => {
    inFlight--;
    current.push(outcome);
    if (outcome.unexpected && unexpectedExamples.length < 10)
      unexpectedExamples.push(`${outcome.kind}: ${outcome.code ?? 'succeeded'}`);
  };

  const start = performance.now();
  const end = start + duration * 1000;
  let sent = 0;
  let nextSample = start + interval * 1000;
  // Open loop: request n is due at start + n / rate, whatever the server's pace.
  // Runs until the last interval's sample is taken; sends only until `end`.
  while (nextSample <= end + 1) {
    const now = performance.now();
    const due = Math.floor(((Math.min(now, end) - start) / 1000) * rate);
    while (sent < due) {
      sent++;
      if (inFlight >= maxInFlight) {
        shed++;
        continue;
      }
      inFlight++;
      const kind: Kind = driver.nextKind();
      void driver.send(kind).then(record);
    }
    if (now >= nextSample) {
      const outcomes = current;
      current = [];
      const times = Float64Array.from(outcomes, (o) => o.ms);
      latencies.push(times);
      const errors: Record<string, number> = {};
      for (const o of outcomes) if (o.code !== undefined) errors[o.code] = (errors[o.code] ?? 0) + 1;
      const sample: Sample = {
        t: round((now - start) / 1000),
        throughput: outcomes.length / interval,
        p50_ms: percentile([...times], 50),
        p99_ms: percentile([...times], 99),
        completed: outcomes.length,
        errors,
        unexpected: outcomes.filter((o) => o.unexpected).length,
        shed,
        ...(await serverGauges()),
        task_db_mib: taskDbMib(),
      };
      shed = 0;
      samples.push(sample);
      process.stdout.write(
        `[${sample.t} s] ${round(sample.throughput)} req/s, p50 ${round(sample.p50_ms)} ms, p99 ${round(sample.p99_ms)} ms, errors ${JSON.stringify(errors)}${sample.unexpected > 0 ? ` (${sample.unexpected} UNEXPECTED)` : ''}, RSS ${round(sample.rss_mib)} MiB (anon ${round(sample.rss_anon_mib)}), heap ${round(sample.heap_used_mib)}/${round(sample.heap_total_mib)} MiB, external ${round(sample.external_mib)} MiB, loop lag p99 ${round(sample.event_loop_lag_p99_ms)} ms, handles ${sample.open_handles}, task db ${round(sample.task_db_mib)} MiB${sample.shed > 0 ? `, shed ${sample.shed}` : ''}\n`,
      );
      nextSample += interval * 1000;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  // Let the requests in flight finish (they count as unexpected failures if they do not).
  const drainUntil = performance.now() + 30_000;
  while (inFlight > 0 && performance.now() < drainUntil)
    await new Promise((resolve) => setTimeout(resolve, 20));
  const lost = inFlight;

  // Drift: the first window after warm-up against the last window.
  const inWindow = (from: number, to: number) =>
    samples.map((s, i) => [s, i] as const).filter(([s]) => s.t > from && s.t <= to + 1e-6);
  const first = inWindow(warmup, warmup + window);
  const last = inWindow(duration - window, duration);
  const summarise = (picked: (readonly [Sample, number])[]) => {
    const times: number[] = [];
    for (const [, i] of picked) times.push(...latencies[i]!);
    const mean = (f: (s: Sample) => number) =>
      picked.reduce((sum, [s]) => sum + f(s), 0) / Math.max(1, picked.length);
    return {
      intervals: picked.length,
      throughput: mean((s) => s.throughput),
      p50_ms: percentile(times, 50),
      p99_ms: percentile(times, 99),
      rss_mib: mean((s) => s.rss_mib),
      rss_anon_mib: mean((s) => s.rss_anon_mib),
      heap_used_mib: mean((s) => s.heap_used_mib),
      heap_total_mib: mean((s) => s.heap_total_mib),
      external_mib: mean((s) => s.external_mib),
      open_handles: mean((s) => s.open_handles),
    };
  };
  const a = summarise(first);
  const b = summarise(last);
  const drift = {
    rss: b.rss_mib / a.rss_mib - 1,
    p50: b.p50_ms / a.p50_ms - 1,
    p99: b.p99_ms / a.p99_ms - 1,
    throughput: b.throughput / a.throughput - 1,
  };
  const unexpected = samples.reduce((sum, s) => sum + s.unexpected, 0) + lost;
  const errorsByCode: Record<string, number> = {};
  for (const s of samples)
    for (const [code, n] of Object.entries(s.errors)) errorsByCode[code] = (errorsByCode[code] ?? 0) + n;
  const failures: string[] = [];
  if (first.length === 0 || last.length === 0)
    failures.push('the run is too short for a first and a last window after warm-up');
  if (drift.rss > maxRssGrowth)
    failures.push(`RSS grew ${round(drift.rss * 100)} % (limit ${maxRssGrowth * 100} %)`);
  if (drift.p50 > maxLatencyDrift)
    failures.push(`latency p50 drifted ${round(drift.p50 * 100)} % (limit ${maxLatencyDrift * 100} %)`);
  if (unexpected > 0)
    failures.push(
      `${unexpected} requests failed that should not have (${unexpectedExamples.join('; ')}${lost > 0 ? `; ${lost} never finished` : ''})`,
    );
  const passed = failures.length === 0;
  // Storage growth over the whole run: what the task database gains per request answered.
  const answered = samples.reduce((sum, s) => sum + s.completed, 0);
  const taskDbGrowth = {
    mib: samples.length === 0 ? 0 : samples[samples.length - 1]!.task_db_mib - samples[0]!.task_db_mib,
    mib_per_minute: 0,
    kib_per_request: 0,
  };
  if (samples.length > 1) {
    const minutes = (samples[samples.length - 1]!.t - samples[0]!.t) / 60;
    taskDbGrowth.mib_per_minute = taskDbGrowth.mib / minutes;
    taskDbGrowth.kib_per_request = (taskDbGrowth.mib * 1024) / Math.max(1, answered - samples[0]!.completed);
  }
  process.stdout.write(
    [
      '',
      `first window (${round(warmup)}–${round(warmup + window)} s): ${round(a.throughput)} req/s, p50 ${round(a.p50_ms)} ms, p99 ${round(a.p99_ms)} ms, RSS ${round(a.rss_mib)} MiB`,
      `last window (${round(duration - window)}–${round(duration)} s): ${round(b.throughput)} req/s, p50 ${round(b.p50_ms)} ms, p99 ${round(b.p99_ms)} ms, RSS ${round(b.rss_mib)} MiB`,
      `drift: RSS ${round(drift.rss * 100)} %, p50 ${round(drift.p50 * 100)} %, p99 ${round(drift.p99 * 100)} %, throughput ${round(drift.throughput * 100)} %`,
      `errors by code: ${JSON.stringify(errorsByCode)}; unexpected: ${unexpected}`,
      `task database: +${round(taskDbGrowth.mib)} MiB, ${round(taskDbGrowth.mib_per_minute)} MiB a minute, ${round(taskDbGrowth.kib_per_request)} KiB per request`,
      passed ? 'PASS' : `FAIL: ${failures.join('; ')}`,
      '',
    ].join('\n'),
  );
  const result = {
    machine: describeMachine(),
    duration_s: duration,
    interval_s: interval,
    warmup_s: warmup,
    window_s: window,
    rate,
    capacity,
    mix: Object.fromEntries(MIX),
    limits: { max_rss_growth: maxRssGrowth, max_latency_drift: maxLatencyDrift },
    first_window: a,
    last_window: b,
    drift,
    errors_by_code: errorsByCode,
    task_db_growth: taskDbGrowth,
    unexpected,
    unexpected_examples: unexpectedExamples,
    passed,
    failures,
    samples,
  };
  let file = values.out;
  if (file === undefined) file = writeResult('soak', result);
  else writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`results: ${file}\n`);
  if (!passed) exitCode = 1;
} finally {
  await driver.close();
  await agentd.stop();
  await mock.stop();
  dir.remove();
}
process.exit(exitCode);
