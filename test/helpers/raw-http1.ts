import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import {
  Http1Error,
  Http1Pool,
  type Http1PoolOptions,
  type Http1Request,
  type ResponseController,
  type ResponseHandler,
} from '../../src/llm/http1-pool.js';

/** One request as a raw HTTP/1.1 server parsed it off the wire. */
export interface RawRequest {
  method: string;
  path: string;
  /** Lower-case names; a repeated name keeps every value in order. */
  headers: Record<string, string[]>;
  head: string;
  body: Buffer;
  /** 1-based index of the connection it came on, in accept order. */
  connection: number;
  socket: Socket;
}

/** Answers one parsed request by writing bytes to `request.socket` (may hold it as long as it likes). */
export type Responder = (request: RawRequest) => void | Promise<void>;

/**
 * A TCP server on 127.0.0.1 that parses requests (head + content-length body, one after another on a
 * connection) and lets the test answer with exact bytes, so response framing is under the test's control.
 */
export class RawHttpServer {
  readonly requests: RawRequest[] = [];
  readonly sockets = new Set<Socket>();
  /** Connections accepted so far. */
  accepted = 0;
  /** Connections that have closed so far (either side). */
  closed = 0;
  private readonly server: Server;

  private constructor(private readonly responder: Responder) {
    this.server = createServer((socket) => this.onConnection(socket));
  }

  static async start(responder: Responder): Promise<RawHttpServer> {
    const raw = new RawHttpServer(responder);
    await new Promise<void>((resolve) => raw.server.listen(0, '127.0.0.1', resolve));
    return raw;
  }

  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('not listening');
    return address.port;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Paths of the requests received so far, in arrival order. */
  get paths(): string[] {
    return this.requests.map((r) => r.path);
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: Socket): void {
    const connection = ++this.accepted;
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.closed++;
    });
    let buffered = Buffer.alloc(0);
    let pending: { head: string; length: number } | null = null;
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (pending === null) {
          const end = buffered.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buffered.subarray(0, end).toString('latin1');
          buffered = buffered.subarray(end + 4);
          const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          pending = { head, length: length ? Number(length[1]) : 0 };
        }
        if (buffered.length < pending.length) return;
        const body = buffered.subarray(0, pending.length);
        buffered = buffered.subarray(pending.length);
        const request = parseHead(pending.head, body, connection, socket);
        pending = null;
        this.requests.push(request);
        void Promise.resolve(this.responder(request)).catch(() => socket.destroy());
      }
    });
  }
}

function parseHead(head: string, body: Buffer, connection: number, socket: Socket): RawRequest {
  const [line = '', ...lines] = head.split('\r\n');
  const [method = '', path = ''] = line.split(' ');
  const headers: Record<string, string[]> = {};
  for (const header of lines) {
    const colon = header.indexOf(':');
    const name = header.slice(0, colon).toLowerCase();
    const values = headers[name] ?? [];
    values.push(header.slice(colon + 1).trim());
    headers[name] = values;
  }
  return { method, path, headers, head, body, connection, socket };
}

/** A promise with its resolve function, for holding a server's answer until the test releases it. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Waits until `condition` holds (polling), failing with `what` after `limitMs`. */
export async function until(condition: () => boolean, what: string, limitMs = 3000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await delay(5);
  }
}

type Headers = Record<string, string | string[] | undefined>;

/** Everything a handler saw during one exchange, in order. */
export class Exchange {
  readonly events: string[] = [];
  readonly chunks: Buffer[] = [];
  controller: ResponseController | null = null;
  statusCode = 0;
  headers: Headers = {};
  trailers: Headers | null = null;
  error: Error | null = null;
  readonly done: Promise<void>;
  private finish!: () => void;

  constructor() {
    this.done = new Promise<void>((resolve) => {
      this.finish = resolve;
    });
  }

  get body(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }

  count(event: string): number {
    return this.events.filter((e) => e === event).length;
  }

  /** A handler that records into this exchange and then calls the matching hook, if any. */
  handler(hooks: Partial<ResponseHandler> = {}): ResponseHandler {
    return {
      onRequestStart: (controller) => {
        this.events.push('requestStart');
        this.controller = controller;
        hooks.onRequestStart?.(controller);
      },
      onResponseStart: (controller, statusCode, headers) => {
        this.events.push('responseStart');
        this.statusCode = statusCode;
        this.headers = headers;
        hooks.onResponseStart?.(controller, statusCode, headers);
      },
      onResponseData: (controller, chunk) => {
        this.events.push('data');
        this.chunks.push(Buffer.from(chunk));
        hooks.onResponseData?.(controller, chunk);
      },
      onResponseEnd: (controller, trailers) => {
        this.events.push('end');
        this.trailers = trailers;
        this.finish();
        hooks.onResponseEnd?.(controller, trailers);
      },
      onResponseError: (controller, error) => {
        this.events.push('error');
        this.error = error;
        this.finish();
        hooks.onResponseError?.(controller, error);
      },
    };
  }
}

/** Dispatches `request` on `pool` with a recording handler; await `.done` for its end or error. */
export function exchange(
  pool: Http1Pool,
  request: Partial<Http1Request> = {},
  hooks: Partial<ResponseHandler> = {},
): Exchange {
  const recorded = new Exchange();
  pool.dispatch({ method: 'GET', path: '/', headers: {}, ...request }, recorded.handler(hooks));
  return recorded;
}

/** Waits for `exchange` to finish, failing after `limitMs` instead of hanging the file. */
export async function settled(recorded: Exchange, limitMs = 3000): Promise<Exchange> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`exchange did not finish: ${recorded.events.join(',')}`)),
      limitMs,
    );
  });
  try {
    await Promise.race([recorded.done, timeout]);
  } finally {
    clearTimeout(timer);
  }
  // Let any late (wrong) second End/Error surface before the test counts events.
  await delay(10);
  return recorded;
}

/** A full response as bytes: status line, header lines, blank line, body. */
export function response(status: string, headers: string[], body = ''): string {
  return `HTTP/1.1 ${status}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${body}`;
}

/** A 200 reply with a two-byte body. */
export const OK = response('200 OK', ['Content-Length: 2'], 'ok');

/** Runs `body` against a fresh raw server and pool, then closes both. */
export async function withPool(
  responder: Responder,
  options: Http1PoolOptions,
  body: (server: RawHttpServer, pool: Http1Pool) => Promise<void>,
): Promise<void> {
  const server = await RawHttpServer.start(responder);
  const pool = new Http1Pool(server.origin, options);
  try {
    await body(server, pool);
  } finally {
    await pool.close();
    await server.stop();
  }
}

/** Asserts the exchange failed exactly once, with an Http1Error of `code`, and never ended. */
export function assertFailedWith(got: Exchange, code: string, what = ''): void {
  assert.ok(got.error instanceof Http1Error, `${what}: expected Http1Error ${code}, got ${got.error}`);
  assert.equal((got.error as Http1Error).code, code, what);
  assert.equal(got.count('error'), 1, what);
  assert.equal(got.count('end'), 0, what);
}
