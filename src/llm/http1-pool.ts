import net from 'node:net';
import tls from 'node:tls';

/**
 * agentd's HTTP/1.1 keep-alive client to a provider (discuss/0011). A provider call holds its
 * connection for the whole streamed reply, so at 10,000 calls in flight there are 10,000 of them:
 * undici's Pool held 9.9 KiB of RSS per in-flight request there and node:http 11.5, a bare
 * `net.Socket` 4.3 (`npm run bench:transport`; this client 4.7). This client is the socket, one
 * parser state per connection and one object per exchange. It speaks only what an
 * OpenAI-compatible endpoint needs: one request at a time per connection (no pipelining), bodies
 * given whole, replies framed by chunked transfer encoding, content-length or the end of the
 * connection. HTTP/2 stays with undici.
 */

export interface Http1PoolOptions {
  /** Most connections open at once; further requests wait in order (default 128). */
  connections?: number;
  /** Idle time without a server hint (default 30 s); with `Keep-Alive: timeout=N`, N s less one. */
  keepAliveTimeoutMs?: number;
  /** Time to open a connection (default 10 s); then the exchange fails with `HTTP1_CONNECT_TIMEOUT`. */
  connectTimeoutMs?: number;
  /** `https:` only: PEM certificate(s) to trust in addition to the system's. */
  ca?: string;
  /** Largest response head (default 64 KiB); beyond, `HTTP1_HEADERS_TOO_LARGE`. */
  maxHeaderBytes?: number;
}

export interface Http1Request {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** What a handler is given to steer its exchange (a subset of undici's DispatchController). */
export interface ResponseController {
  /** Ends the exchange: its connection is closed, `onResponseError(reason)` is called once. */
  abort(reason: Error): void;
  /** Stops reading the connection (the bytes of the current read are still delivered). */
  pause(): void;
  resume(): void;
  readonly aborted: boolean;
  readonly paused: boolean;
  /** undici's controller keeps the raw header buffers here; this client never does. */
  rawHeaders?: unknown;
}

/** The callbacks of one exchange; `onResponseEnd` or `onResponseError` comes once, never both. */
export interface ResponseHandler {
  /** Called inside `dispatch`, before anything is sent. */
  onRequestStart(controller: ResponseController): void;
  onResponseStart(controller: ResponseController, statusCode: number, headers: ResponseHeaders): void;
  /** Body bytes, transfer framing removed. */
  onResponseData(controller: ResponseController, chunk: Buffer): void;
  onResponseEnd(controller: ResponseController, trailers: ResponseHeaders): void;
  onResponseError(controller: ResponseController, error: Error): void;
}

export type Http1ErrorCode =
  | 'HTTP1_CONNECT_TIMEOUT'
  | 'HTTP1_PARSE'
  | 'HTTP1_HEADERS_TOO_LARGE'
  | 'HTTP1_CLOSED'
  | 'HTTP1_TIMEOUT'
  | 'HTTP1_POOL_CLOSED';

export class Http1Error extends Error {
  readonly code: Http1ErrorCode;

  constructor(code: Http1ErrorCode, message: string) {
    super(message);
    this.name = 'Http1Error';
    this.code = code;
  }
}

export interface Http1Response {
  statusCode: number;
  headers: ResponseHeaders;
  body: Buffer;
}

export interface Http1PoolStats {
  open: number;
  idle: number;
  busy: number;
  queued: number;
}

const DEFAULT_CONNECTIONS = 128;
const DEFAULT_KEEP_ALIVE_MS = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
/** A server's keep-alive hint is shortened by this much, so agentd closes first. */
const KEEP_ALIVE_MARGIN_MS = 1_000;
/** Longest chunk-size line (with extensions) or trailer section accepted. */
const MAX_LINE_BYTES = 8 * 1024;
/** How often idle connections past their limit are closed. */
const SWEEP_MS = 1_000;
/** Used queue slots dropped at once when a queue that never empties has this many. */
const COMPACT_QUEUE_AT = 1024;
/** A `request()` without its own limit gives up after this long. */
const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;

const CRLF_CRLF = Buffer.from('\r\n\r\n', 'latin1');
const LF = 0x0a;
const CR = 0x0d;
/** Header names agentd writes itself; the same names in a request's headers are ignored. */
const OWN_HEADERS = new Set(['host', 'content-length', 'connection', 'transfer-encoding']);
const NO_HEADERS: ResponseHeaders = Object.freeze({}) as ResponseHeaders;
const EMPTY = Buffer.alloc(0);

/**
 * Keep-alive HTTP/1.1 connections to one origin. Connections are reused most recent first; an idle
 * connection the server closed is dropped, and one older than its keep-alive limit is never used.
 * No transparent retries: agentd's router owns the retry policy.
 */
export class Http1Pool {
  readonly #port: number;
  readonly #hostname: string;
  readonly #hostHeader: string;
  readonly #secure: boolean;
  readonly #ca: string | undefined;
  readonly #limit: number;
  readonly #keepAliveMs: number;
  readonly #connectTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly #open = new Set<Connection>();
  readonly #idle: Connection[] = [];
  #queue: Exchange[] = [];
  #queueHead = 0;
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;
  /** The last TLS session the server gave, offered again by the next connection (no full handshake). */
  tlsSession: Buffer | undefined;
  /**
   * The last frozen header object serialised and its text: a provider sends the same frozen object
   * with every call. An object that can change is serialised each time.
   */
  #lastHeaders: Record<string, string> | undefined;
  #lastHeaderText = '';

  constructor(origin: string, options: Http1PoolOptions = {}) {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`Http1Pool: ${origin} is not an http: or https: origin`);
    }
    this.#secure = url.protocol === 'https:';
    this.#hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.#port = url.port === '' ? (this.#secure ? 443 : 80) : Number(url.port);
    this.#hostHeader = url.host;
    this.#ca = options.ca;
    this.#limit = options.connections ?? DEFAULT_CONNECTIONS;
    this.#keepAliveMs = options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_MS;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  }

  get stats(): Http1PoolStats {
    const idle = this.#idle.length;
    return {
      open: this.#open.size,
      idle,
      busy: this.#open.size - idle,
      queued: this.#waiting(),
    };
  }

  /** Exchanges waiting for a connection (an aborted one stays in the queue until its turn). */
  #waiting(): number {
    let waiting = 0;
    for (let i = this.#queueHead; i < this.#queue.length; i++) if (!this.#queue[i]!.done) waiting++;
    return waiting;
  }

  /** Sends one request; the handler sees the reply. Throws only for a request that cannot be written. */
  dispatch(request: Http1Request, handler: ResponseHandler): void {
    const head = this.#head(request);
    const exchange = new Exchange(handler, head, request.body);
    handler.onRequestStart(exchange);
    if (exchange.done) return;
    if (this.#closed) {
      exchange.fail(new Http1Error('HTTP1_POOL_CLOSED', 'the connection pool is closed'));
      return;
    }
    const connection = this.#takeIdle() ?? this.#connect();
    if (connection === undefined) this.#queue.push(exchange);
    else connection.start(exchange);
  }

  /** A whole reply as one Buffer (for small JSON endpoints such as embeddings). */
  request(
    request: Http1Request,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<Http1Response> {
    return new Promise((resolve, reject) => {
      const collector = new Collector(
        resolve,
        reject,
        options.signal,
        options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      );
      this.dispatch(request, collector);
    });
  }

  /** Closes every connection; exchanges still queued or running fail with `HTTP1_POOL_CLOSED`. */
  close(): Promise<void> {
    this.#closed = true;
    this.#stopSweeper();
    const error = new Http1Error('HTTP1_POOL_CLOSED', 'the connection pool is closed');
    const queue = this.#queue;
    this.#queue = [];
    for (let i = this.#queueHead; i < queue.length; i++) queue[i]!.fail(error);
    this.#queueHead = 0;
    for (const connection of this.#idle) connection.listedIdle = false;
    this.#idle.length = 0;
    const closing: Promise<void>[] = [];
    for (const connection of this.#open) closing.push(connection.destroy(error));
    return Promise.all(closing).then(() => undefined);
  }

  /** A connection finished an exchange and can carry another. */
  release(connection: Connection): void {
    const next = this.#dequeue();
    if (next !== undefined) {
      connection.start(next);
      return;
    }
    connection.idle();
    connection.listedIdle = true;
    this.#idle.push(connection);
    if (this.#sweeper === undefined) {
      this.#sweeper = setInterval(sweep, SWEEP_MS, this);
      this.#sweeper.unref();
    }
  }

  /** A connection closed; a waiting exchange may now open another. */
  forget(connection: Connection): void {
    if (!this.#open.delete(connection)) return;
    if (connection.listedIdle) {
      connection.listedIdle = false;
      this.#idle.splice(this.#idle.indexOf(connection), 1);
    }
    if (this.#closed) return;
    const next = this.#dequeue();
    if (next !== undefined) this.#connect()!.start(next);
  }

  /** Closes idle connections past their keep-alive limit. */
  sweep(): void {
    const now = performance.now();
    const idle = this.#idle;
    for (let i = idle.length - 1; i >= 0; i--) {
      const connection = idle[i]!;
      if (connection.expired(now)) {
        idle.splice(i, 1);
        connection.listedIdle = false;
        void connection.destroy();
      }
    }
    if (idle.length === 0) this.#stopSweeper();
  }

  #stopSweeper(): void {
    if (this.#sweeper === undefined) return;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  #takeIdle(): Connection | undefined {
    const idle = this.#idle;
    let connection = idle.pop();
    while (connection !== undefined) {
      connection.listedIdle = false;
      if (!connection.expired(performance.now())) return connection;
      void connection.destroy();
      connection = idle.pop();
    }
    return undefined;
  }

  #connect(): Connection | undefined {
    if (this.#open.size >= this.#limit) return undefined;
    let socket: net.Socket;
    if (this.#secure) {
      const secure = tls.connect({
        host: this.#hostname,
        port: this.#port,
        servername: net.isIP(this.#hostname) === 0 ? this.#hostname : undefined,
        ALPNProtocols: ['http/1.1'],
        ...(this.#ca === undefined ? {} : { ca: this.#ca }),
        ...(this.tlsSession === undefined ? {} : { session: this.tlsSession }),
      });
      secure.on('session', (session: Buffer) => {
        this.tlsSession = session;
      });
      socket = secure;
    } else {
      socket = net.connect({ host: this.#hostname, port: this.#port });
    }
    const connection = new Connection(this, socket, this.#secure, this.#keepAliveMs, this.#connectTimeoutMs);
    this.#open.add(connection);
    return connection;
  }

  #dequeue(): Exchange | undefined {
    const queue = this.#queue;
    while (this.#queueHead < queue.length) {
      const exchange = queue[this.#queueHead]!;
      queue[this.#queueHead++] = undefined as unknown as Exchange;
      if (this.#queueHead === queue.length) {
        queue.length = 0;
        this.#queueHead = 0;
      } else if (this.#queueHead >= COMPACT_QUEUE_AT && this.#queueHead * 2 >= queue.length) {
        // A queue that never empties (more calls than connections for long) drops its used front.
        queue.splice(0, this.#queueHead);
        this.#queueHead = 0;
      }
      if (!exchange.done) return exchange;
    }
    return undefined;
  }

  #head(request: Http1Request): string {
    const body = request.body;
    const length = body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    checkToken(request.method, 'method');
    checkPath(request.path);
    return `${request.method} ${request.path} HTTP/1.1\r\nhost: ${this.#hostHeader}\r\n${this.#headerText(request.headers)}content-length: ${length}\r\n\r\n`;
  }

  #headerText(headers: Record<string, string>): string {
    if (headers === this.#lastHeaders) return this.#lastHeaderText;
    let text = '';
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      checkToken(name, 'header name');
      if (OWN_HEADERS.has(name.toLowerCase())) continue;
      const line = String(value);
      // Visible ASCII, space and tab: no CR or LF that would split the head, nothing whose bytes
      // would depend on an encoding.
      if (!FIELD_VALUE.test(line)) {
        throw new TypeError(`header ${name}: a value may hold only visible ASCII, space and tab`);
      }
      text += `${name}: ${line}\r\n`;
    }
    if (Object.isFrozen(headers)) {
      this.#lastHeaders = headers;
      this.#lastHeaderText = text;
    }
    return text;
  }
}

function sweep(pool: Http1Pool): void {
  pool.sweep();
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e]*$/;

function checkToken(value: string, what: string): void {
  if (!TOKEN.test(value)) throw new TypeError(`${what} ${JSON.stringify(value)} is not an HTTP token`);
}

function checkPath(path: string): void {
  // Any byte a request target may not hold (controls, space, DEL, non-ASCII) would split or
  // corrupt the request line.
  if (path.length === 0 || !/^[\x21-\x7e]+$/.test(path)) {
    throw new TypeError(`request path ${JSON.stringify(path)} is not a valid request target`);
  }
}

/** One request and its reply; also the handler's controller. */
class Exchange implements ResponseController {
  readonly handler: ResponseHandler;
  /** Request head and body, dropped once written. */
  head: string;
  body: string | Buffer | undefined;
  connection: Connection | undefined;
  done = false;
  #aborted = false;
  #paused = false;
  rawHeaders: Buffer[] | null = null;

  constructor(handler: ResponseHandler, head: string, body: string | Buffer | undefined) {
    this.handler = handler;
    this.head = head;
    this.body = body;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get paused(): boolean {
    return this.#paused;
  }

  abort(reason: Error): void {
    if (this.done) return;
    this.#aborted = true;
    const connection = this.connection;
    // A queued exchange is skipped when its turn comes.
    if (connection !== undefined) void connection.destroy();
    this.fail(reason);
  }

  pause(): void {
    if (this.done || this.#paused) return;
    this.#paused = true;
    this.connection?.socket.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (!this.done) this.connection?.socket.resume();
  }

  /** Ends the exchange with an error (once). */
  fail(error: Error): void {
    if (this.done) return;
    this.done = true;
    this.connection = undefined;
    try {
      this.handler.onResponseError(this, error);
    } catch (thrown) {
      handlerThrew('onResponseError', thrown);
    }
  }

  /** Ends the exchange with its reply complete (once). */
  end(trailers: ResponseHeaders): void {
    try {
      this.handler.onResponseEnd(this, trailers);
    } catch (thrown) {
      handlerThrew('onResponseEnd', thrown);
    }
  }
}

/**
 * A handler threw where no exchange is left to fail (its own error or end callback): reported as
 * a process warning rather than thrown into a socket listener, which would crash the process.
 */
function handlerThrew(callback: string, thrown: unknown): void {
  const error = thrown instanceof Error ? thrown : new Error(String(thrown));
  process.emitWarning(error, {
    type: 'Http1PoolHandlerWarning',
    detail: `thrown by a handler's ${callback}`,
  });
}

enum State {
  Idle,
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailers,
  UntilClose,
  Closed,
}

/** One socket, its response parser and the exchange it carries. */
class Connection {
  readonly #pool: Http1Pool;
  readonly socket: net.Socket;
  /** In the pool's idle list. */
  listedIdle = false;
  readonly #defaultKeepAliveMs: number;
  #keepAliveMs: number;
  #connectTimer: NodeJS.Timeout | undefined;
  #exchange: Exchange | undefined;
  #state = State.Idle;
  /** Bytes of a head or a line not complete yet. */
  #pending: Buffer = EMPTY;
  /** Body bytes left in the current content-length body or chunk. */
  #remaining = 0;
  /** CR LF bytes still expected after a chunk's data. */
  #crlfLeft = 0;
  #reusable = true;
  #noBody = false;
  #idleSince = 0;
  /** Unreferenced while idle, so that idle connections do not keep the process alive. */
  #unreferenced = false;
  #closed: Promise<void> | undefined;
  #resolveClosed: (() => void) | undefined;

  constructor(
    pool: Http1Pool,
    socket: net.Socket,
    secure: boolean,
    keepAliveMs: number,
    connectTimeoutMs: number,
  ) {
    this.#pool = pool;
    this.socket = socket;
    this.#defaultKeepAliveMs = keepAliveMs;
    this.#keepAliveMs = keepAliveMs;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    this.#connectTimer = setTimeout(connectTimedOut, connectTimeoutMs, this, connectTimeoutMs);
    // Shared listeners that find their connection on the socket: no closures per connection.
    (socket as OwnedSocket)[CONNECTION] = this;
    socket.once(secure ? 'secureConnect' : 'connect', onSocketConnect);
    socket.on('data', onSocketData);
    socket.on('end', onSocketEnd);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
  }

  start(exchange: Exchange): void {
    if (this.#state === State.Closed) {
      exchange.fail(new Http1Error('HTTP1_CLOSED', 'the connection closed before the request was sent'));
      return;
    }
    this.#exchange = exchange;
    exchange.connection = this;
    this.#state = State.Head;
    this.#reusable = true;
    this.#noBody = exchange.head.charCodeAt(0) === 72 && exchange.head.startsWith('HEAD ');
    const socket = this.socket;
    if (this.#unreferenced) {
      this.#unreferenced = false;
      socket.ref();
    }
    const body = exchange.body;
    if (body === undefined) socket.write(exchange.head, 'latin1');
    else if (typeof body === 'string') socket.write(exchange.head + body);
    else {
      socket.cork();
      socket.write(exchange.head, 'latin1');
      socket.write(body);
      socket.uncork();
    }
    exchange.head = '';
    exchange.body = undefined;
    if (exchange.paused) socket.pause();
  }

  idle(): void {
    this.#idleSince = performance.now();
    this.#unreferenced = true;
    this.socket.unref();
  }

  expired(now: number): boolean {
    return this.#state !== State.Idle || now - this.#idleSince >= this.#keepAliveMs;
  }

  /** Destroys the socket; resolves once it closed. */
  destroy(error?: Error): Promise<void> {
    if (this.#closed === undefined) {
      this.#closed = new Promise((resolve) => {
        this.#resolveClosed = resolve;
      });
      if (this.#state === State.Closed) this.#resolveClosed?.();
      const exchange = this.#exchange;
      this.#exchange = undefined;
      this.#reusable = false;
      if (exchange !== undefined && error !== undefined) exchange.fail(error);
      this.socket.destroy();
    }
    return this.#closed;
  }

  connected(): void {
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
  }

  timedOut(ms: number): void {
    this.#connectTimer = undefined;
    this.socket.destroy(new Http1Error('HTTP1_CONNECT_TIMEOUT', `no connection within ${ms} ms`));
  }

  onData(chunk: Buffer): void {
    try {
      this.#parse(chunk);
    } catch (error) {
      const exchange = this.#exchange;
      this.#exchange = undefined;
      this.#reusable = false;
      this.#state = State.Closed;
      this.socket.destroy();
      exchange?.fail(error as Error);
    }
  }

  onEnd(): void {
    const exchange = this.#exchange;
    if (exchange !== undefined && this.#state === State.UntilClose) {
      this.#finish(exchange, NO_HEADERS, false);
    } else if (exchange !== undefined) {
      this.#exchange = undefined;
      exchange.fail(
        new Http1Error('HTTP1_CLOSED', 'the server closed the connection before the reply ended'),
      );
    }
    this.#reusable = false;
    this.socket.destroy();
  }

  onError(error: Error): void {
    const exchange = this.#exchange;
    this.#exchange = undefined;
    this.#reusable = false;
    exchange?.fail(error);
  }

  onClose(): void {
    clearTimeout(this.#connectTimer);
    this.#state = State.Closed;
    const exchange = this.#exchange;
    this.#exchange = undefined;
    exchange?.fail(new Http1Error('HTTP1_CLOSED', 'the connection closed before the reply ended'));
    this.#resolveClosed?.();
    this.#pool.forget(this);
  }

  /** Feeds one read to the parser; an exception is a protocol error (or a handler's). */
  #parse(chunk: Buffer): void {
    let data = chunk;
    let offset = 0;
    while (offset < data.length) {
      const exchange = this.#exchange;
      if (exchange === undefined) {
        // Bytes with no request outstanding: the server is not speaking HTTP/1.1 as asked.
        throw new Http1Error('HTTP1_PARSE', 'the server sent bytes with no request outstanding');
      }
      switch (this.#state) {
        case State.Head: {
          if (this.#pending.length > 0) {
            data = Buffer.concat([this.#pending, data.subarray(offset)]);
            offset = 0;
            this.#pending = EMPTY;
          }
          const end = data.indexOf(CRLF_CRLF, offset);
          const limit = this.#pool.maxHeaderBytes;
          if (end === -1) {
            if (data.length - offset > limit) throw headersTooLarge(limit);
            this.#pending = data.subarray(offset);
            return;
          }
          if (end - offset > limit) throw headersTooLarge(limit);
          const text = data.toString('latin1', offset, end);
          offset = end + 4;
          if (!this.#onHead(exchange, text, offset < data.length)) return;
          break;
        }
        case State.Length: {
          const take = Math.min(this.#remaining, data.length - offset);
          const piece = take === data.length ? data : data.subarray(offset, offset + take);
          offset += take;
          this.#remaining -= take;
          exchange.handler.onResponseData(exchange, piece);
          if (this.#exchange !== exchange) return;
          if (this.#remaining === 0) {
            this.#finish(exchange, NO_HEADERS, offset < data.length);
            return;
          }
          break;
        }
        case State.ChunkSize: {
          const line = this.#line(data, offset);
          if (line === undefined) return;
          offset = this.#lineEnd;
          const size = chunkSize(line);
          if (size === 0) {
            this.#state = State.Trailers;
            this.#trailerText = '';
          } else {
            this.#remaining = size;
            this.#state = State.ChunkData;
          }
          break;
        }
        case State.ChunkData: {
          const take = Math.min(this.#remaining, data.length - offset);
          const piece = take === data.length ? data : data.subarray(offset, offset + take);
          offset += take;
          this.#remaining -= take;
          if (this.#remaining === 0) {
            this.#state = State.ChunkEnd;
            this.#crlfLeft = 2;
          }
          exchange.handler.onResponseData(exchange, piece);
          if (this.#exchange !== exchange) return;
          break;
        }
        case State.ChunkEnd: {
          while (this.#crlfLeft > 0 && offset < data.length) {
            const expected = this.#crlfLeft === 2 ? CR : LF;
            if (data[offset] !== expected) throw parseError('a chunk is not followed by CR LF');
            offset++;
            this.#crlfLeft--;
          }
          if (this.#crlfLeft === 0) this.#state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          const line = this.#line(data, offset);
          if (line === undefined) return;
          offset = this.#lineEnd;
          if (line.length > 0) {
            if (this.#trailerText.length + line.length > MAX_LINE_BYTES) {
              throw parseError('the trailer section is too large');
            }
            this.#trailerText += `${line}\r\n`;
            break;
          }
          const trailers = this.#trailerText === '' ? NO_HEADERS : parseFields(this.#trailerText, 0);
          this.#trailerText = '';
          this.#finish(exchange, trailers, offset < data.length);
          return;
        }
        case State.UntilClose: {
          const piece = offset === 0 ? data : data.subarray(offset);
          offset = data.length;
          exchange.handler.onResponseData(exchange, piece);
          break;
        }
        default:
          throw parseError('unexpected bytes');
      }
    }
  }

  #trailerText = '';
  /** Where the last line read by `#line` ended (the byte after its LF). */
  #lineEnd = 0;

  /** The next CR LF–terminated line (latin1, without CR LF), or undefined until it is complete. */
  #line(data: Buffer, offset: number): string | undefined {
    const lf = data.indexOf(LF, offset);
    if (lf === -1) {
      const rest = data.subarray(offset);
      this.#pending = this.#pending.length === 0 ? rest : Buffer.concat([this.#pending, rest]);
      if (this.#pending.length > MAX_LINE_BYTES) throw parseError('a chunk-size or trailer line is too long');
      return undefined;
    }
    let line: string;
    if (this.#pending.length > 0) {
      const whole = Buffer.concat([this.#pending, data.subarray(offset, lf)]);
      this.#pending = EMPTY;
      line = whole.toString('latin1');
    } else {
      line = data.toString('latin1', offset, lf);
    }
    if (line.length > MAX_LINE_BYTES) throw parseError('a chunk-size or trailer line is too long');
    if (line.charCodeAt(line.length - 1) !== CR) throw parseError('a line does not end with CR LF');
    this.#lineEnd = lf + 1;
    return line.slice(0, -1);
  }

  /** A response head; false when the exchange ended in the handler (nothing more to parse). */
  #onHead(exchange: Exchange, text: string, rest: boolean): boolean {
    const lineEnd = text.indexOf('\r\n');
    const statusLine = lineEnd === -1 ? text : text.slice(0, lineEnd);
    // `HTTP/1.x SSS reason`
    if (
      statusLine.length < 12 ||
      !statusLine.startsWith('HTTP/1.') ||
      statusLine.charCodeAt(8) !== 32 ||
      (statusLine.length > 12 && statusLine.charCodeAt(12) !== 32)
    ) {
      throw parseError(`malformed status line ${JSON.stringify(statusLine.slice(0, 64))}`);
    }
    const minor = statusLine.charCodeAt(7) - 48;
    const status = threeDigits(statusLine, 9);
    if ((minor !== 0 && minor !== 1) || status < 100) {
      throw parseError(`malformed status line ${JSON.stringify(statusLine.slice(0, 64))}`);
    }
    const headers = lineEnd === -1 ? {} : parseFields(text, lineEnd + 2);
    if (status < 200) {
      if (status === 101) throw parseError('the server switched protocols, which was not asked for');
      return true; // an interim reply (100, 103); the final head follows
    }
    const connection = headers.connection;
    if (minor === 0 || (connection !== undefined && hasToken(connection, 'close'))) this.#reusable = false;
    const keepAlive = headers['keep-alive'];
    this.#keepAliveMs =
      keepAlive === undefined
        ? this.#defaultKeepAliveMs
        : keepAliveLimit(keepAlive, this.#defaultKeepAliveMs);
    const transfer = headers['transfer-encoding'];
    const length = headers['content-length'];
    if (this.#noBody || status === 204 || status === 304) this.#state = State.Length;
    else if (transfer !== undefined) {
      if (length !== undefined) this.#reusable = false;
      if (lastCodingIsChunked(transfer)) this.#state = State.ChunkSize;
      else {
        this.#state = State.UntilClose;
        this.#reusable = false;
      }
    } else if (length !== undefined) {
      this.#remaining = contentLength(length);
      this.#state = State.Length;
    } else {
      this.#state = State.UntilClose;
      this.#reusable = false;
    }
    if (this.#state === State.Length && (this.#noBody || status === 204 || status === 304))
      this.#remaining = 0;
    exchange.handler.onResponseStart(exchange, status, headers);
    if (this.#exchange !== exchange) return false;
    if (this.#state === State.Length && this.#remaining === 0) {
      this.#finish(exchange, NO_HEADERS, rest);
      return false;
    }
    return true;
  }

  /**
   * The reply is complete: the connection goes back to the pool, then the handler hears of it.
   * Bytes after the reply (`rest`) answer nothing that was asked: the connection is not reused.
   */
  #finish(exchange: Exchange, trailers: ResponseHeaders, rest: boolean): void {
    this.#exchange = undefined;
    exchange.connection = undefined;
    exchange.done = true;
    if (exchange.paused) this.socket.resume();
    if (this.#reusable && !rest && this.#state !== State.UntilClose) {
      this.#state = State.Idle;
      this.#pool.release(this);
    } else {
      this.#state = State.Closed;
      void this.destroy();
    }
    exchange.end(trailers);
  }
}

const CONNECTION = Symbol('agentd.http1.connection');

interface OwnedSocket extends net.Socket {
  [CONNECTION]: Connection;
}

function onSocketConnect(this: OwnedSocket): void {
  this[CONNECTION].connected();
}

function onSocketData(this: OwnedSocket, chunk: Buffer): void {
  this[CONNECTION].onData(chunk);
}

function onSocketEnd(this: OwnedSocket): void {
  this[CONNECTION].onEnd();
}

function onSocketError(this: OwnedSocket, error: Error): void {
  this[CONNECTION].onError(error);
}

function onSocketClose(this: OwnedSocket): void {
  this[CONNECTION].onClose();
}

function connectTimedOut(connection: Connection, ms: number): void {
  connection.timedOut(ms);
}

/** The three decimal digits at `at`, or -1. */
function threeDigits(text: string, at: number): number {
  let value = 0;
  for (let i = at; i < at + 3; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

function parseError(message: string): Http1Error {
  return new Http1Error('HTTP1_PARSE', `invalid HTTP/1.1 reply: ${message}`);
}

function headersTooLarge(limit: number): Http1Error {
  return new Http1Error('HTTP1_HEADERS_TOO_LARGE', `the reply's head is larger than ${limit} bytes`);
}

/** Header fields from `text` (latin1, CR LF separated) starting at `from`; names lower-cased. */
function parseFields(text: string, from: number): ResponseHeaders {
  const headers: ResponseHeaders = {};
  let start = from;
  while (start < text.length) {
    let end = text.indexOf('\r\n', start);
    if (end === -1) end = text.length;
    const colon = text.indexOf(':', start);
    if (colon === -1 || colon >= end || colon === start)
      throw parseError('a header line has no name or colon');
    const first = text.charCodeAt(start);
    if (first === 32 || first === 9) throw parseError('obsolete header line folding');
    const last = text.charCodeAt(colon - 1);
    if (last === 32 || last === 9) throw parseError('whitespace before a header colon');
    const name = text.slice(start, colon).toLowerCase();
    const value = text.slice(colon + 1, end).trim();
    start = end + 2;
    if (name === '__proto__') continue;
    // Own fields only: a header named after an Object.prototype member is a field like any other.
    const existing = Object.hasOwn(headers, name) ? headers[name] : undefined;
    if (existing === undefined) headers[name] = value;
    else if (typeof existing === 'string') headers[name] = [existing, value];
    else existing.push(value);
  }
  return headers;
}

function hasToken(value: string | string[], token: string): boolean {
  const text = typeof value === 'string' ? value : value.join(',');
  for (const part of text.split(',')) if (part.trim().toLowerCase() === token) return true;
  return false;
}

function lastCodingIsChunked(value: string | string[]): boolean {
  const text = typeof value === 'string' ? value : value.join(',');
  const codings = text.split(',');
  return codings[codings.length - 1]!.trim().toLowerCase() === 'chunked';
}

function contentLength(value: string | string[]): number {
  const values = typeof value === 'string' ? value.split(',') : value.flatMap((v) => v.split(','));
  let length = -1;
  for (const raw of values) {
    const text = raw.trim();
    if (!/^\d{1,15}$/.test(text)) throw parseError(`content-length ${JSON.stringify(text)} is not a number`);
    const n = Number(text);
    if (length !== -1 && n !== length) throw parseError('differing content-length values');
    length = n;
  }
  return length;
}

function chunkSize(line: string): number {
  const semicolon = line.indexOf(';');
  const text = (semicolon === -1 ? line : line.slice(0, semicolon)).trim();
  if (!/^[0-9a-fA-F]{1,12}$/.test(text))
    throw parseError(`bad chunk size ${JSON.stringify(text.slice(0, 32))}`);
  return Number.parseInt(text, 16);
}

/** `timeout=N` in a Keep-Alive header, less a margin so agentd closes before the server does. */
function keepAliveLimit(value: string | string[], fallback: number): number {
  const text = typeof value === 'string' ? value : value.join(',');
  const match = /(?:^|[,\s])timeout\s*=\s*(\d+)/i.exec(text);
  if (match === null) return fallback;
  const hintMs = Number(match[1]) * 1000;
  return Math.min(fallback, Math.max(hintMs - KEEP_ALIVE_MARGIN_MS, hintMs / 2));
}

/** Collects a whole reply for `Http1Pool.request`, with an AbortSignal and a time limit. */
class Collector implements ResponseHandler {
  readonly #resolve: (response: Http1Response) => void;
  readonly #reject: (error: Error) => void;
  readonly #signal: AbortSignal | undefined;
  readonly #timeoutMs: number;
  #timer: NodeJS.Timeout | undefined;
  #controller: ResponseController | undefined;
  #statusCode = 0;
  #headers: ResponseHeaders = NO_HEADERS;
  readonly #chunks: Buffer[] = [];

  constructor(
    resolve: (response: Http1Response) => void,
    reject: (error: Error) => void,
    signal: AbortSignal | undefined,
    timeoutMs: number,
  ) {
    this.#resolve = resolve;
    this.#reject = reject;
    this.#signal = signal;
    this.#timeoutMs = timeoutMs;
  }

  readonly #onAbort = (): void => {
    const reason = this.#signal?.reason;
    this.#controller?.abort(reason instanceof Error ? reason : new Error('aborted'));
  };

  onRequestStart(controller: ResponseController): void {
    this.#controller = controller;
    const timeoutMs = this.#timeoutMs;
    this.#timer = setTimeout(() => {
      this.#controller?.abort(new Http1Error('HTTP1_TIMEOUT', `no complete reply within ${timeoutMs} ms`));
    }, timeoutMs);
    this.#timer.unref();
    const signal = this.#signal;
    if (signal === undefined) return;
    if (signal.aborted) this.#onAbort();
    else signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  onResponseStart(_controller: ResponseController, statusCode: number, headers: ResponseHeaders): void {
    this.#statusCode = statusCode;
    this.#headers = headers;
  }

  onResponseData(_controller: ResponseController, chunk: Buffer): void {
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    this.#settle();
    const chunks = this.#chunks;
    this.#resolve({
      statusCode: this.#statusCode,
      headers: this.#headers,
      body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks),
    });
  }

  onResponseError(_controller: ResponseController, error: Error): void {
    this.#settle();
    this.#reject(error);
  }

  #settle(): void {
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#controller = undefined;
  }
}
