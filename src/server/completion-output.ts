import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { CancelledError } from '../errors.js';
import type { CompletionOutput, DrainListener } from '../gateway/index.js';
import type { Cancellation } from '../lib/cancellation.js';

/** The headers of an event stream. */
const STREAM_HEADERS: Record<string, string> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/** Queued stream text past this many characters is sent at once instead of at the end of the turn. */
const FLUSH_AT = 16 * 1024;

/** The output of a response, for the module-level listeners below (no closure per request). */
const OUTPUT = Symbol('agentd.completionOutput');
type OutputResponse = ServerResponse & { [OUTPUT]?: HttpCompletionOutput };

/**
 * A completion written to the HTTP response: SSE for streams, JSON otherwise. Stream text
 * written during one turn of the event loop (every chunk of a provider read, and the ending when
 * the reply completes in it) leaves in one send; `write` reports when the client's socket buffer
 * is full, so the writer can stop reading its provider until `drain`.
 */
export class HttpCompletionOutput implements CompletionOutput {
  /** Fastify's reply, hijacked when the answer starts; undefined when served directly. */
  readonly #reply: FastifyReply | undefined;
  readonly #res: OutputResponse;
  /** Aborted when the client goes away (gateway mode). */
  readonly #cancellation: Cancellation | undefined;
  #hangUp: (() => void) | undefined;
  #headers: Record<string, string> | undefined;
  #queued = '';
  #flushing = false;
  #drain: DrainListener | undefined;
  started = false;
  closed = false;

  constructor(res: ServerResponse, reply: FastifyReply | undefined, cancellation: Cancellation | undefined) {
    this.#reply = reply;
    this.#cancellation = cancellation;
    this.#res = res as OutputResponse;
    this.#res[OUTPUT] = this;
    res.on('close', onResponseClose);
  }

  /** Runs `listener` if the client goes away before the answer was written (agent mode). */
  onHangUp(listener: () => void): void {
    this.#hangUp = listener;
  }

  /** The response closed: a hang-up unless the answer was complete. */
  hungUp(): void {
    if (this.#res.writableEnded) return;
    this.closed = true;
    this.#queued = '';
    this.#cancellation?.abortWith(new CancelledError('the client closed the connection'));
    this.#hangUp?.();
  }

  header(name: string, value: string): void {
    if (this.started) return;
    this.#headers ??= {};
    this.#headers[name] = value;
  }

  write(text: string): boolean {
    if (this.closed) return true;
    if (!this.started) this.#start();
    this.#queued += text;
    if (this.#queued.length >= FLUSH_AT) return this.flush();
    if (!this.#flushing) {
      this.#flushing = true;
      setImmediate(flushOutput, this);
    }
    return !this.#res.writableNeedDrain;
  }

  /** Sends what is queued; false when the client's socket buffer is full. */
  flush(): boolean {
    this.#flushing = false;
    const text = this.#queued;
    if (text === '' || this.closed || this.#res.writableEnded) return !this.#res.writableNeedDrain;
    this.#queued = '';
    this.#sendHeaders();
    return this.#res.write(text);
  }

  end(text?: string): void {
    const res = this.#res;
    if (this.closed || res.writableEnded) return;
    if (!this.started) this.#start();
    const last = text === undefined ? this.#queued : this.#queued + text;
    this.#queued = '';
    this.#sendHeaders();
    res.end(last);
  }

  json(body: string | Buffer): void {
    if (this.closed || this.started) return;
    this.started = true;
    this.#reply?.hijack();
    const res = this.#res;
    const head: Record<string, string | number> = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    };
    const headers = this.#headers;
    if (headers !== undefined) for (const name in headers) head[name] = headers[name]!;
    res.writeHead(200, head);
    res.end(body);
  }

  onDrainOnce(listener: DrainListener): void {
    this.#drain = listener;
    this.#res.once('drain', onResponseDrain);
  }

  /** The client's socket drained. */
  drained(): void {
    const listener = this.#drain;
    this.#drain = undefined;
    listener?.onDrain();
  }

  #start(): void {
    this.started = true;
    this.#reply?.hijack();
  }

  #sendHeaders(): void {
    const res = this.#res;
    if (res.headersSent) return;
    res.writeHead(
      200,
      this.#headers === undefined ? STREAM_HEADERS : { ...STREAM_HEADERS, ...this.#headers },
    );
  }
}

function onResponseClose(this: OutputResponse): void {
  this[OUTPUT]?.hungUp();
}

function onResponseDrain(this: OutputResponse): void {
  this[OUTPUT]?.drained();
}

function flushOutput(output: HttpCompletionOutput): void {
  output.flush();
}
