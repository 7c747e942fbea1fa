import autocannon from 'autocannon';
import { Client } from 'undici';
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
  const client = new Client(target.url, { pipelining: 1 });
  const times: number[] = [];
  const headerValues: number[] = [];
  try {
    for (let i = 0; i < warmup + requests; i++) {
      const started = process.hrtime.bigint();
      const response = await client.request({
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
      if (i < warmup) continue;
      times.push(elapsed);
      const value = header === undefined ? undefined : response.headers[header];
      if (typeof value === 'string') headerValues.push(Number(value));
    }
  } finally {
    await client.close();
  }
  const result: LatencyResult = { p50_ms: median(times), p99_ms: percentile(times, 99) };
  if (headerValues.length > 0) result.header_p50_ms = median(headerValues);
  return result;
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
