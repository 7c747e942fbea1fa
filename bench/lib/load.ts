import autocannon from 'autocannon';
import { Client } from 'undici';
import { cpuSeconds, machineCpu } from './processes.js';
import { median, percentile } from './stats.js';

export interface Target {
  name: string;
  url: string;
  path: string;
  body: string;
  /** Extra request headers (a gateway told its upstream per request). */
  headers?: Record<string, string>;
  /** Checked on every latency request: a wrong answer must not count as a fast one. */
  validate?: (status: number, body: string) => boolean;
}

export interface LatencyResult {
  p50_ms: number;
  p99_ms: number;
  /** Median of a response header in milliseconds (e.g. x-agentd-overhead-ms), when present. */
  header_p50_ms?: number;
}

/** Sequential requests over one keep-alive connection; per-request wall time in ms. */
export async function measureLatency(
  target: Target,
  requests: number,
  warmup: number,
  header?: string,
): Promise<LatencyResult> {
  return (await measureLatencyInterleaved([target], requests, warmup, header))[0]!;
}

/** Timed requests one target sends before the next target's turn. */
const TURN = 100;
/**
 * Untimed requests at the start of each turn: a process that sat idle through the other targets'
 * turns answers its first requests cold (caches, CPU wake-up; on the 2-core machine 2–4× its warm
 * time for the first one, warm again by the fourth), which a single target measured alone never
 * sees.
 */
const TURN_WARMUP = 5;

/**
 * Sequential requests over one keep-alive connection per target, the targets taking turns of
 * `TURN` requests (the first of each round of turns rotating). A stall of this shared machine then
 * lands on every target alike, so one target's percentile minus another's is what it adds, not
 * which of them a stall happened to hit (measured one after the other, the mock's own p99 moved
 * between 0.25 and 2.6 ms from round to round).
 */
export async function measureLatencyInterleaved(
  targets: readonly Target[],
  requests: number,
  warmup: number,
  header?: string,
): Promise<LatencyResult[]> {
  const clients = targets.map((target) => new Client(target.url, { pipelining: 1 }));
  const times = targets.map((): number[] => []);
  const headerValues = targets.map((): number[] => []);
  const send = async (t: number, timed: boolean): Promise<void> => {
    const target = targets[t]!;
    const started = process.hrtime.bigint();
    const response = await clients[t]!.request({
      path: target.path,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...target.headers },
      body: target.body,
    });
    const text = await response.body.text();
    const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
    if (target.validate !== undefined && !target.validate(response.statusCode, text)) {
      throw new Error(`${target.name}: unexpected answer ${response.statusCode} ${text.slice(0, 300)}`);
    }
    if (!timed) return;
    times[t]!.push(elapsed);
    const value = header === undefined ? undefined : response.headers[header];
    if (typeof value === 'string') headerValues[t]!.push(Number(value));
  };
  try {
    for (let t = 0; t < targets.length; t++) for (let i = 0; i < warmup; i++) await send(t, false);
    for (let turn = 0; times.some((list) => list.length < requests); turn++) {
      for (let k = 0; k < targets.length; k++) {
        const t = (turn + k) % targets.length;
        const count = Math.min(TURN, requests - times[t]!.length);
        if (count === 0) continue;
        if (targets.length > 1) for (let i = 0; i < TURN_WARMUP; i++) await send(t, false);
        for (let i = 0; i < count; i++) await send(t, true);
      }
    }
  } finally {
    await Promise.all(clients.map((client) => client.close()));
  }
  return targets.map((_, t) => {
    const result: LatencyResult = { p50_ms: median(times[t]!), p99_ms: percentile(times[t]!, 99) };
    if (headerValues[t]!.length > 0) result.header_p50_ms = median(headerValues[t]!);
    return result;
  });
}

export interface ThroughputResult {
  requests_per_sec: number;
  /** Requests completed in the run. */
  requests: number;
  errors: number;
  non2xx: number;
}

/** Requests per second with `connections` concurrent keep-alive connections (autocannon). */
export async function measureThroughput(
  target: Target,
  connections: number,
  seconds: number,
): Promise<ThroughputResult> {
  const result = await autocannon({
    url: `${target.url}${target.path}`,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers },
    body: target.body,
    connections,
    pipelining: 1,
    duration: seconds,
  });
  return {
    requests_per_sec: result.requests.average,
    requests: result.requests.total,
    errors: result.errors,
    non2xx: result.non2xx,
  };
}

export interface ThroughputAndCpu extends ThroughputResult {
  /** CPU µs (user + system, all its threads) the process that answered spent per request. */
  server_cpu_us_per_request: number;
  /** The share of the whole machine's CPU time that stayed idle during the run. */
  machine_idle: number;
}

/**
 * `measureThroughput`, with the CPU time per request of the process `pid` that answers the load
 * generator (/proc) and how much of the machine stayed idle. A server bound by its main thread
 * serves one core's worth: its throughput is 1 s ÷ its CPU per request.
 */
export async function measureThroughputAndCpu(
  target: Target,
  connections: number,
  seconds: number,
  pid: number,
): Promise<ThroughputAndCpu> {
  const cpuBefore = await cpuSeconds(pid);
  const machineBefore = await machineCpu();
  const result = await measureThroughput(target, connections, seconds);
  const machineAfter = await machineCpu();
  const cpuAfter = await cpuSeconds(pid);
  return {
    ...result,
    server_cpu_us_per_request: ((cpuAfter - cpuBefore) * 1e6) / result.requests,
    machine_idle: (machineAfter.idle - machineBefore.idle) / (machineAfter.total - machineBefore.total),
  };
}
