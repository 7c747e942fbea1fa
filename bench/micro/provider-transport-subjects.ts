/**
 * The client transports `bench:transport` compares, each driven the way agentd would drive it to
 * call an OpenAI-compatible server over HTTP/1.1. Every subject does the same per-request work on
 * the body: count its bytes and keep the last chunk (nothing is parsed), so the figures are the
 * transport's own.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Pool } from 'undici';
import { Http1Pool } from '../../src/llm/http1-pool.js';

export const SUBJECTS = ['undici', 'node-http', 'http1pool', 'net-socket'] as const;
export type SubjectName = (typeof SUBJECTS)[number];

export const SUBJECT_LABELS: Record<SubjectName, string> = {
  undici: 'undici Pool.dispatch',
  'node-http': 'node:http keep-alive Agent',
  http1pool: "agentd's Http1Pool",
  'net-socket': 'bare net.Socket (floor)',
};

/** What the driver learns about one request; the same object whatever the transport. */
export interface Exchange {
  /** The response head arrived (called once). */
  onHead(): void;
  /** The first body bytes arrived (called once). */
  onBody(): void;
  /** The response ended: its status, body bytes, and last body chunk. */
  onEnd(status: number, bytes: number, last: Buffer | undefined): void;
  onError(error: Error): void;
}

export interface Transport {
  send(body: string, exchange: Exchange): void;
  close(): Promise<void>;
}

export const PATH = '/v1/chat/completions';
const HEADERS: Record<string, string> = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  authorization: 'Bearer bench',
};
/** agentd sets undici's headers and body timeouts to one backstop value (discuss/0010). */
const BACKSTOP_MS = 305_000;

/** The subset of undici's DispatchController (and of Http1Pool's ResponseController) a handler touches. */
interface Controller {
  rawHeaders?: unknown;
}

/**
 * A minimal dispatch handler, as src/llm/openai.ts's ChatCall is for undici minus the SSE
 * parsing: drop the raw headers, count the body, report the end. Http1Pool takes the same handler.
 */
class CountingHandler {
  readonly #exchange: Exchange;
  #status = 0;
  #bytes = 0;
  #last: Buffer | undefined;

  constructor(exchange: Exchange) {
    this.#exchange = exchange;
  }

  onRequestStart(_controller: Controller): void {}

  onResponseStart(controller: Controller, statusCode: number): void {
    controller.rawHeaders = null;
    this.#status = statusCode;
    this.#exchange.onHead();
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    if (this.#bytes === 0) this.#exchange.onBody();
    this.#bytes += chunk.length;
    this.#last = chunk;
  }

  onResponseEnd(): void {
    const last = this.#last;
    this.#last = undefined;
    this.#exchange.onEnd(this.#status, this.#bytes, last);
  }

  onResponseError(_controller: Controller, error: Error): void {
    this.#last = undefined;
    this.#exchange.onError(error);
  }
}

function undiciTransport(origin: string, connections: number): Transport {
  // The options src/llm/openai.ts gives its Pool for an HTTP/1.1 provider.
  const pool = new Pool(origin, {
    connections,
    pipelining: 1,
    allowH2: false,
    keepAliveTimeout: 30_000,
    connect: { timeout: 10_000 },
  });
  return {
    send(body, exchange) {
      pool.dispatch(
        {
          path: PATH,
          method: 'POST',
          headers: HEADERS,
          body,
          headersTimeout: BACKSTOP_MS,
          bodyTimeout: BACKSTOP_MS,
        },
        new CountingHandler(exchange),
      );
    },
    close: () => pool.destroy(),
  };
}

function nodeHttpTransport(origin: string, connections: number): Transport {
  const url = new URL(origin);
  const agent = new HttpAgent({ keepAlive: true, maxSockets: connections, scheduling: 'lifo' });
  // node:http would send a body of unknown length chunked: give it its content-length, once per body.
  const headersFor = new Map<string, Record<string, string | number>>();
  return {
    send(body, exchange) {
      let headers = headersFor.get(body);
      if (headers === undefined) {
        headers = { ...HEADERS, 'content-length': Buffer.byteLength(body) };
        headersFor.set(body, headers);
      }
      const req = httpRequest(
        { agent, hostname: url.hostname, port: url.port, method: 'POST', path: PATH, headers },
        (res) => {
          exchange.onHead();
          let bytes = 0;
          let last: Buffer | undefined;
          res.on('data', (chunk: Buffer) => {
            if (bytes === 0) exchange.onBody();
            bytes += chunk.length;
            last = chunk;
          });
          res.on('end', () => exchange.onEnd(res.statusCode ?? 0, bytes, last));
          res.on('error', (error) => exchange.onError(error));
        },
      );
      req.on('error', (error) => exchange.onError(error));
      req.end(body);
    },
    close: async () => agent.destroy(),
  };
}

const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * The floor: one socket per request, the request written once, the reply's bytes counted. No
 * parsing beyond finding the end of the head (to know when body bytes arrive); memory figure only.
 */
function netSocketTransport(origin: string): Transport {
  const url = new URL(origin);
  const port = Number(url.port);
  const sockets = new Set<Socket>();
  return {
    send(body, exchange) {
      const socket = connect(port, url.hostname);
      sockets.add(socket);
      let head = '';
      for (const name in HEADERS) head += `${name}: ${HEADERS[name]}\r\n`;
      socket.write(
        `POST ${PATH} HTTP/1.1\r\nhost: ${url.host}\r\n${head}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      // 0: in the head, 1: head read, 2: body bytes seen.
      let state = 0;
      let bytes = 0;
      socket.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (state === 2) return;
        if (state === 0) {
          // A head split across reads is not expected from the mock; its bytes count as head.
          const end = chunk.indexOf(HEAD_END);
          if (end === -1) return;
          state = 1;
          exchange.onHead();
          if (end + HEAD_END.length === chunk.length) return;
        }
        state = 2;
        exchange.onBody();
      });
      socket.on('end', () => exchange.onEnd(0, bytes, undefined));
      socket.on('error', (error) => exchange.onError(error));
      socket.on('close', () => sockets.delete(socket));
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}

function http1PoolTransport(origin: string, connections: number): Transport {
  const pool = new Http1Pool(origin, { connections, keepAliveTimeoutMs: 30_000, connectTimeoutMs: 10_000 });
  return {
    send(body, exchange) {
      pool.dispatch({ method: 'POST', path: PATH, headers: HEADERS, body }, new CountingHandler(exchange));
    },
    close: () => pool.close(),
  };
}

/** Creates a subject's transport to `origin` with at most `connections` sockets. */
export async function createTransport(
  subject: SubjectName,
  origin: string,
  connections: number,
): Promise<Transport> {
  switch (subject) {
    case 'undici':
      return undiciTransport(origin, connections);
    case 'node-http':
      return nodeHttpTransport(origin, connections);
    case 'http1pool':
      return http1PoolTransport(origin, connections);
    case 'net-socket':
      return netSocketTransport(origin);
  }
}
