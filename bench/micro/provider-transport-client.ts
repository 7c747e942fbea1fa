/**
 * One transport in its own process, started by `bench/micro/provider-transport.ts`:
 *
 *   node --expose-gc --import tsx provider-transport-client.ts '<json ClientRequest>'
 *
 * `memory`: open `inflight` streamed requests at once against the slow mock, wait until each got
 * its first body bytes, and print the RSS they added (`RESULT <json>`), then exit.
 * `throughput`: warm up against the fast mock, print `READY`, then run the rounds the parent asks
 * for over IPC (`{ kind, requests }` → `RoundResult`) with `concurrency` requests in flight.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createTransport,
  type Exchange,
  type SubjectName,
  type Transport,
} from './provider-transport-subjects.js';

export interface ClientRequest {
  mode: 'memory' | 'throughput';
  subject: SubjectName;
  /** The fast mock (warm-up, throughput). */
  fastOrigin: string;
  /** The slow streaming mock (memory). */
  slowOrigin: string;
  inflight: number;
  /** The slow mock's model name: its query keeps every stream open past the measurement. */
  slowModel: string;
  concurrency: number;
  warmup: number;
  /** Memory: most requests opened and still without response headers. */
  openWindow: number;
  /** Longest wait for every request's first body bytes. */
  deadlineMs: number;
}

export interface MemoryResult {
  inflight: number;
  /** Requests that had body bytes when the RSS was read (must be all). */
  streaming: number;
  /** Requests that had ended or failed by then (must be none). */
  ended: number;
  errors: string[];
  rss_before_mib: number;
  rss_kib_per_request: number;
  heap_kib_per_request: number;
  external_kib_per_request: number;
  /** From the first send to the last send, and to the last request's first body bytes. */
  sent_ms: number;
  open_ms: number;
}

export type ReplyKind = 'whole' | 'stream';

export interface RoundResult {
  requests: number;
  wall_ms: number;
  cpu_us: number;
  errors: number;
  first_error?: string;
}

const MESSAGES = [{ role: 'user', content: 'Say hello.' }];
export function chatBody(model: string, stream: boolean): string {
  return JSON.stringify({ model, messages: MESSAGES, stream });
}

/** Counts what happens to the requests of one phase; one `Tracked` object per request. */
class Tally {
  heads = 0;
  streaming = 0;
  ended = 0;
  failed = 0;
  errors: string[] = [];
  /** Expected body length of a correct reply (0: not checked). */
  expectedBytes = 0;
  wrong = 0;
  onSettled: (() => void) | undefined;
}

class Tracked implements Exchange {
  readonly #tally: Tally;
  #settled = false;

  constructor(tally: Tally) {
    this.#tally = tally;
  }

  onHead(): void {
    this.#tally.heads++;
  }

  onBody(): void {
    this.#tally.streaming++;
  }

  onEnd(status: number, bytes: number): void {
    if (this.#settled) return;
    this.#settled = true;
    const tally = this.#tally;
    tally.ended++;
    if (status !== 200 || (tally.expectedBytes !== 0 && bytes !== tally.expectedBytes)) {
      tally.wrong++;
      if (tally.errors.length < 5) tally.errors.push(`status ${status}, ${bytes} body bytes`);
    }
    tally.onSettled?.();
  }

  onError(error: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    const tally = this.#tally;
    tally.failed++;
    if (tally.errors.length < 5)
      tally.errors.push(`${(error as { code?: string }).code ?? error.name}: ${error.message}`);
    tally.onSettled?.();
  }
}

/** `requests` requests with `concurrency` in flight (closed loop); resolves when all settled. */
function closedLoop(transport: Transport, body: string, requests: number, concurrency: number, tally: Tally) {
  return new Promise<void>((resolve) => {
    let started = 0;
    let settled = 0;
    tally.onSettled = () => {
      settled++;
      if (started < requests) {
        started++;
        transport.send(body, new Tracked(tally));
      } else if (settled === requests) resolve();
    };
    const first = Math.min(concurrency, requests);
    for (; started < first; started++) transport.send(body, new Tracked(tally));
  });
}

/** The body length of a correct reply, from one request whose body is checked. */
async function referenceBytes(transport: Transport, body: string, stream: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    transport.send(body, {
      onHead() {},
      onBody() {},
      onEnd(status, bytes, last) {
        const text = last?.toString('utf8') ?? '';
        const ok = stream ? text.endsWith('data: [DONE]\n\n') : text.trimEnd().endsWith('}');
        if (status === 200 && ok) resolve(bytes);
        else
          reject(
            new Error(`reference reply is wrong: status ${status}, ends ${JSON.stringify(text.slice(-40))}`),
          );
      },
      onError: reject,
    });
  });
}

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) throw new Error('run with --expose-gc');
  collect();
  collect();
}

async function memory(request: ClientRequest): Promise<MemoryResult> {
  const warmBody = chatBody('mock', true);
  // Warm the subject's code (JIT, lazy requires) on its own pool, which is then closed, so the
  // measured pool starts empty.
  const warm = await createTransport(request.subject, request.fastOrigin, request.concurrency);
  const warmTally = new Tally();
  if (request.subject === 'net-socket') {
    // The floor never ends a request: warm it by waiting for body bytes.
    for (let i = 0; i < request.concurrency; i++) warm.send(warmBody, new Tracked(warmTally));
    const until = Date.now() + 10_000;
    while (warmTally.streaming < request.concurrency && Date.now() < until) await sleep(10);
  } else await closedLoop(warm, warmBody, request.warmup, request.concurrency, warmTally);
  await warm.close();
  if (warmTally.failed + warmTally.wrong > 0)
    throw new Error(`warm-up failed: ${warmTally.errors.join('; ')}`);

  const transport = await createTransport(request.subject, request.slowOrigin, request.inflight);
  const body = chatBody(request.slowModel, true);
  await sleep(200);
  gc();
  await sleep(100);
  gc();
  const before = process.memoryUsage();
  const tally = new Tally();
  const start = performance.now();
  // At most `openWindow` requests without response headers at a time: a burst of thousands of
  // connects overflows the mock's accept queue (Node's listen backlog, 511), and the kernel then
  // drops or resets connections (dropped SYNs come back after 1, 3, 7, 15 s).
  let sent = 0;
  while (sent < request.inflight && tally.failed + tally.ended === 0) {
    while (sent < request.inflight && sent - tally.heads - tally.failed < request.openWindow) {
      transport.send(body, new Tracked(tally));
      sent++;
    }
    await sleep(1);
  }
  const sentMs = performance.now() - start;
  const deadline = Date.now() + request.deadlineMs;
  while (tally.streaming < request.inflight && tally.failed + tally.ended === 0 && Date.now() < deadline)
    await sleep(5);
  const openMs = performance.now() - start;
  gc();
  const after = process.memoryUsage();
  const n = request.inflight;
  const kib = (bytes: number): number => bytes / 1024 / n;
  return {
    inflight: n,
    streaming: tally.streaming,
    ended: tally.ended + tally.failed,
    errors: tally.errors,
    rss_before_mib: before.rss / 2 ** 20,
    rss_kib_per_request: kib(after.rss - before.rss),
    heap_kib_per_request: kib(after.heapUsed - before.heapUsed),
    external_kib_per_request: kib(after.external - before.external),
    sent_ms: sentMs,
    open_ms: openMs,
  };
}

async function throughput(request: ClientRequest): Promise<void> {
  const transport = await createTransport(request.subject, request.fastOrigin, 128);
  const bodies: Record<ReplyKind, string> = {
    whole: chatBody('mock', false),
    stream: chatBody('mock', true),
  };
  const expected: Record<ReplyKind, number> = {
    whole: await referenceBytes(transport, bodies.whole, false),
    stream: await referenceBytes(transport, bodies.stream, true),
  };
  for (const kind of ['whole', 'stream'] as const) {
    const tally = new Tally();
    tally.expectedBytes = expected[kind];
    await closedLoop(transport, bodies[kind], request.warmup, request.concurrency, tally);
    if (tally.failed + tally.wrong > 0) throw new Error(`warm-up failed: ${tally.errors.join('; ')}`);
  }
  process.on('message', (message: { kind: ReplyKind; requests: number } | 'exit') => {
    if (message === 'exit') {
      void transport.close().finally(() => process.exit(0));
      return;
    }
    const tally = new Tally();
    tally.expectedBytes = expected[message.kind];
    const cpu = process.cpuUsage();
    const start = performance.now();
    void closedLoop(transport, bodies[message.kind], message.requests, request.concurrency, tally).then(
      () => {
        const wall = performance.now() - start;
        const used = process.cpuUsage(cpu);
        const result: RoundResult = {
          requests: message.requests,
          wall_ms: wall,
          cpu_us: used.user + used.system,
          errors: tally.failed + tally.wrong,
          ...(tally.errors.length > 0 ? { first_error: tally.errors[0] } : {}),
        };
        process.send?.(result);
      },
    );
  });
  process.stdout.write('READY\n');
}

const request = JSON.parse(process.argv[2] ?? '{}') as ClientRequest;
try {
  if (request.mode === 'memory') {
    const result = await memory(request);
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
    process.exit(0);
  } else await throughput(request);
} catch (error) {
  process.stdout.write(`FAILED ${JSON.stringify(error instanceof Error ? error.message : String(error))}\n`);
  process.exit(1);
}
