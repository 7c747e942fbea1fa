import { StringDecoder } from 'node:string_decoder';
import { type buildConnector, Pool } from 'undici';
import {
  type AgentdError,
  ProviderProtocolError,
  ProviderStreamTruncatedError,
  ProviderTimeoutError,
} from '../errors.js';
import type { AbortTarget, Cancellation } from '../lib/cancellation.js';
import { coarseTimer, type TimerEntry } from '../lib/coarse-timer.js';
import { ChatStreamAssembler, resultFromCompletion } from './chat-stream.js';
import {
  Http1Pool,
  type Http1Request,
  type ResponseController,
  type ResponseHandler,
  type ResponseHeaders,
} from './http1-pool.js';
import {
  classifyHttpError,
  classifyTransportError,
  extractError,
  parseRetryAfter,
} from './provider-errors.js';
import type {
  CallOptions,
  CallTimeouts,
  ChatMessage,
  ChatRequest,
  ChatResult,
  ForwardedResponse,
  Provider,
  StreamFlow,
  StreamSink,
} from './types.js';

export interface OpenAICompatibleOptions {
  /** A short name used in errors, metrics and logs (for example `openai`). */
  name: string;
  /** Base URL including the version prefix, for example `https://api.openai.com/v1`. */
  baseUrl: string;
  apiKey?: string;
  /** Extra headers sent with every request (organisation ids and the like). */
  headers?: Record<string, string>;
  /** Keep-alive connections kept open to the provider. */
  connections?: number;
  /**
   * Speak HTTP/2: over TLS where the provider offers it (ALPN), and with prior knowledge (h2c)
   * to an `http://` base URL, whose server must then accept it.
   */
  http2?: boolean;
  /** HTTP/2 streams per connection (default 1000). */
  maxConcurrentStreams?: number;
  /** PEM certificate(s) to trust in addition to the system's (a private CA). */
  ca?: string;
  connectTimeoutMs?: number;
  /** Ask for usage in the stream (`stream_options.include_usage`); most providers support it. */
  streamUsage?: boolean;
}

/** Extra time given to undici's own header/body timeouts (HTTP/2), which only back up agentd's. */
const BACKSTOP_MS = 5_000;
/** undici's headers and body timeouts: later than any of agentd's own deadlines for the call. */
function backstopMs(timeouts: CallTimeouts): number {
  return Math.max(timeouts.headersMs, timeouts.firstTokenMs, timeouts.idleMs) + BACKSTOP_MS;
}

/** The largest error body read from a provider; the rest is discarded. */
const MAX_ERROR_BODY = 64 * 1024;

/**
 * A provider for any OpenAI-compatible chat completions endpoint (OpenAI, DeepSeek, Ollama,
 * vLLM, llama.cpp server, agentd's own mock). Over HTTP/1.1 (the default) agentd's own keep-alive
 * client carries the calls (`Http1Pool`, discuss/0011: half of undici's memory per call in flight,
 * `npm run bench:transport`); with `http2: true`, an undici Pool multiplexes them. Either way a
 * call is a handler: no AbortSignal and no body stream per call, which measured tens of
 * microseconds each; streamed replies are parsed chunk by chunk and never re-copied.
 */
export class OpenAICompatibleProvider implements Provider {
  readonly name: string;
  /** HTTP/1.1 connections, or undefined when the provider speaks HTTP/2. */
  readonly #http1: Http1Pool | undefined;
  /** undici's Pool, for HTTP/2 only. */
  readonly #http2Pool: Pool | undefined;
  readonly #path: string;
  readonly #prefix: string;
  readonly #headers: Record<string, string>;
  readonly #streamUsage: boolean;

  constructor(options: OpenAICompatibleOptions) {
    this.name = options.name;
    const url = new URL(options.baseUrl);
    this.#prefix = url.pathname.replace(/\/+$/, '');
    this.#path = `${this.#prefix}/chat/completions`;
    this.#headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    if (options.apiKey) this.#headers.authorization = `Bearer ${options.apiKey}`;
    Object.assign(this.#headers, options.headers);
    // Frozen: the connection pool serialises a frozen header object once, not per call.
    Object.freeze(this.#headers);
    this.#streamUsage = options.streamUsage ?? true;
    const connections = options.connections ?? 128;
    const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    if (options.http2 !== true) {
      this.#http1 = new Http1Pool(url.origin, {
        connections,
        connectTimeoutMs,
        ...(options.ca === undefined ? {} : { ca: options.ca }),
      });
      return;
    }
    const streams = options.maxConcurrentStreams ?? 1000;
    // undici's connector reads `useH2c` (its types do not list it yet): cleartext HTTP/2 with
    // prior knowledge, without which `allowH2` only takes effect through TLS's ALPN.
    const connect: buildConnector.BuildOptions & { useH2c?: boolean } = {
      timeout: connectTimeoutMs,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(url.protocol === 'http:' ? { useH2c: true } : {}),
    };
    this.#http2Pool = new Pool(url.origin, {
      connections,
      // Over HTTP/2, undici caps the streams in flight on a connection at `pipelining`.
      pipelining: streams,
      allowH2: true,
      maxConcurrentStreams: streams,
      keepAliveTimeout: 30_000,
      connect,
    });
  }

  chat(request: ChatRequest, options: CallOptions): Promise<ChatResult> {
    const stream = options.stream ?? true;
    const call = new ChatCall(this.name, request.model, request.messages, options, stream);
    const headers = options.traceparent
      ? { ...this.#headers, traceparent: options.traceparent }
      : this.#headers;
    const body = this.#serialize(request, stream);
    if (this.#http1 !== undefined) {
      // No transport timeouts: agentd's own deadlines (headers, first token, idleness) govern.
      return call.start(this.#http1, { path: this.#path, method: 'POST', headers, body });
    }
    const backstop = backstopMs(options.timeouts);
    return call.start(this.#http2Pool!, {
      path: this.#path,
      method: 'POST',
      headers,
      body,
      // undici runs a non-idempotent request alone on its connection; over HTTP/2 that would
      // serialise every stream. A completion is safe to multiplex: agentd, not undici, decides
      // on retries.
      idempotent: true,
      // undici's own limits stay as a backstop; agentd's deadlines are the precise ones. One value
      // for both phases: undici then refreshes its socket timer at the response headers instead of
      // replacing it by another (discuss/0010), and the backstop is past every agentd deadline.
      headersTimeout: backstop,
      bodyTimeout: backstop,
    });
  }

  /** Sends a JSON body to another endpoint of the provider (`/embeddings`) over the same connections. */
  async forward(path: string, body: string, signal?: AbortSignal): Promise<ForwardedResponse> {
    const request: Http1Request = {
      path: `${this.#prefix}${path}`,
      method: 'POST',
      headers: this.#headers,
      body,
    };
    if (this.#http1 !== undefined) {
      const response = await this.#http1.request(request, signal === undefined ? {} : { signal });
      return {
        status: response.statusCode,
        retryAfterMs: parseRetryAfter(response.headers),
        body: response.body,
      };
    }
    const response = await this.#http2Pool!.request({
      path: `${this.#prefix}${path}`,
      method: 'POST',
      headers: this.#headers,
      body,
      signal,
    });
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(chunk as Buffer);
    return {
      status: response.statusCode,
      retryAfterMs: parseRetryAfter(response.headers),
      body: Buffer.concat(chunks),
    };
  }

  /** Closes the connections; called after tasks drained, so what remains is abandoned work. */
  close(): Promise<void> {
    return this.#http1?.close() ?? this.#http2Pool!.destroy();
  }

  #serialize(request: ChatRequest, stream: boolean): string {
    const body: Record<string, unknown> = { model: request.model, messages: request.messages };
    if (stream) {
      body.stream = true;
      if (this.#streamUsage) body.stream_options = { include_usage: true };
    }
    if (request.tools !== undefined && request.tools.length > 0) body.tools = request.tools;
    if (request.temperature !== undefined) body.temperature = request.temperature;
    if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
    if (request.extra !== undefined) Object.assign(body, request.extra);
    return JSON.stringify(body);
  }
}

type Phase = 'headers' | 'first_token' | 'idle';

/** `Http1Pool`, or undici's Pool over HTTP/2: each takes a request and a call as its handler. */
interface ChatTransport<R> {
  dispatch(request: R, handler: ChatCall): unknown;
}

/** What a settled call holds instead of its request's messages. */
const NO_MESSAGES: readonly ChatMessage[] = [];

/**
 * One attempt: the transport's response handler, its deadlines (headers, first token, idleness, all
 * on the process-wide coarse timer) and its cancellation. Settles exactly once. A streamed reply
 * settles as soon as it is complete (finish reason and usage, or `[DONE]`); the tail then drains
 * so the connection is reused. An end of stream before a finish reason is a truncation, never a
 * success. Settling drops everything the call refers to for its request (sink, parser, messages,
 * cancellation, undici's controller): a finished call stayed reachable to scavenges (most likely
 * through undici objects already promoted), and through it the whole request — client response
 * included — was promoted, 7 KB per request, filling old space (discuss/0301).
 */
class ChatCall implements ResponseHandler, AbortTarget, StreamFlow {
  readonly #provider: string;
  readonly #model: string;
  readonly #timeouts: CallTimeouts;
  readonly #stream: boolean;
  #messages: readonly ChatMessage[];
  #cancellation: Cancellation | undefined;
  #assembler: ChatStreamAssembler | undefined;
  #sink: StreamSink | undefined;
  readonly #startedAt = performance.now();
  #controller: ResponseController | undefined;
  #abortReason: Error | undefined;
  #status = 0;
  #retryAfterMs: number | undefined;
  /** Error replies and non-streamed replies are collected whole. */
  #chunks: Buffer[] | undefined;
  #size = 0;
  /** Created by the first chunk that may end inside a character (most replies never need one). */
  #decoder: StringDecoder | undefined;
  #bodyStarted = false;
  #settled = false;
  #resolve: ((result: ChatResult) => void) | undefined;
  #reject: ((error: Error) => void) | undefined;
  #headersTimer: TimerEntry | undefined;
  #firstTokenTimer: TimerEntry | undefined;
  #idleTimer: TimerEntry | undefined;
  #lastChunkAt = 0;
  #paused = false;

  constructor(
    provider: string,
    model: string,
    messages: readonly ChatMessage[],
    options: CallOptions,
    stream: boolean,
  ) {
    this.#provider = provider;
    this.#model = model;
    this.#messages = messages;
    this.#timeouts = options.timeouts;
    this.#stream = stream;
    this.#cancellation = options.cancellation;
    this.#sink = options.sink;
    this.#assembler = stream
      ? new ChatStreamAssembler(options.sink as StreamSink | undefined, this.#startedAt)
      : undefined;
  }

  start<R>(transport: ChatTransport<R>, request: R): Promise<ChatResult> {
    const promise = new Promise<ChatResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#cancellation?.add(this);
    if (this.#settled) return promise;
    this.#headersTimer = coarseTimer.schedule(this.#timeouts.headersMs, expireHeaders, this);
    if (this.#assembler !== undefined) {
      this.#firstTokenTimer = coarseTimer.schedule(this.#timeouts.firstTokenMs, expireFirstToken, this);
    }
    transport.dispatch(request, this);
    return promise;
  }

  // AbortTarget: the task was cancelled or timed out.
  abortWith(reason: Error): void {
    if (this.#settled) return;
    this.#failAndAbort(reason);
  }

  onRequestStart(controller: ResponseController): void {
    if (this.#abortReason !== undefined) controller.abort(this.#abortReason);
    else if (!this.#settled) this.#controller = controller;
  }

  onResponseStart(controller: ResponseController, statusCode: number, headers: ResponseHeaders): void {
    // undici's controller keeps the raw header buffers for the whole response; they are views of
    // the socket read that carried them, which stayed alive for as long as the stream ran
    // (~1.5 KB per call in flight). The parsed `headers` are all this call reads.
    controller.rawHeaders = null;
    coarseTimer.cancel(this.#headersTimer);
    this.#headersTimer = undefined;
    if (this.#settled) return;
    this.#status = statusCode;
    if (statusCode >= 300) {
      this.#retryAfterMs = parseRetryAfter(headers);
      this.#chunks = [];
      return;
    }
    if (!this.#stream) {
      this.#chunks = [];
      this.#watchIdle();
    } else {
      this.#sink?.onStreamStart?.(this);
    }
  }

  // StreamFlow: the sink's reader is slow; undici stops reading the socket after this chunk.
  pause(): void {
    if (this.#settled || this.#paused) return;
    this.#paused = true;
    this.#controller?.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#lastChunkAt = performance.now();
    if (!this.#settled) this.#controller?.resume();
  }

  onResponseData(_controller: ResponseController, chunk: Buffer): void {
    if (this.#settled) return;
    this.#bodyStarted = true;
    this.#lastChunkAt = performance.now();
    const chunks = this.#chunks;
    if (chunks !== undefined) {
      if (this.#size < MAX_ERROR_BODY || this.#status < 300) chunks.push(chunk);
      this.#size += chunk.length;
      return;
    }
    const assembler = this.#assembler!;
    assembler.feed(this.#decode(chunk));
    if (this.#firstTokenTimer !== undefined && assembler.started) this.#onFirstDelta();
    if (assembler.failure !== undefined) this.#failAndAbort(assembler.failure);
    else if (assembler.complete) {
      this.#succeed(assembler.result(this.#messages));
    }
  }

  onResponseEnd(): void {
    if (this.#settled) return;
    if (this.#status >= 300) {
      const text = Buffer.concat(this.#chunks ?? [])
        .subarray(0, MAX_ERROR_BODY)
        .toString('utf8');
      this.#fail(
        classifyHttpError(this.#provider, this.#model, this.#status, extractError(text), this.#retryAfterMs),
      );
      return;
    }
    if (!this.#stream) {
      let body: unknown;
      try {
        const chunks = this.#chunks ?? [];
        // A reply that came in one read (the usual case) is used as read, not copied.
        const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        const text = bytes.toString('utf8');
        this.#sink?.onBody?.(bytes, text);
        body = JSON.parse(text);
      } catch {
        this.#fail(
          new ProviderProtocolError(`${this.#provider}/${this.#model}: the completion is not valid JSON`),
        );
        return;
      }
      try {
        this.#succeed(resultFromCompletion(body, this.#messages));
      } catch (err) {
        this.#fail(err as Error);
      }
      return;
    }
    const assembler = this.#assembler!;
    if (assembler.failure !== undefined) this.#fail(assembler.failure);
    else if (assembler.finished || assembler.done) this.#succeed(assembler.result(this.#messages));
    else {
      this.#fail(
        new ProviderStreamTruncatedError(
          `${this.#provider}/${this.#model}: the stream ended before a finish reason`,
          {
            details: { provider: this.#provider, model: this.#model },
          },
        ),
      );
    }
  }

  onResponseError(_controller: ResponseController, error: Error): void {
    if (this.#settled) return;
    // A reply that already has its finish reason is complete even if the tail breaks.
    const assembler = this.#assembler;
    if (assembler?.finished && assembler.failure === undefined && this.#status < 300) {
      this.#succeed(assembler.result(this.#messages));
      return;
    }
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('AGENTD_')) this.#fail(error);
    else this.#fail(classifyTransportError(this.#provider, this.#model, error, this.#bodyStarted));
  }

  expire(phase: Phase): void {
    if (this.#settled) return;
    const timeouts = this.#timeouts;
    const what =
      phase === 'headers'
        ? `no response headers within ${timeouts.headersMs} ms`
        : phase === 'first_token'
          ? `no first token within ${timeouts.firstTokenMs} ms (time-to-first-token limit)`
          : `the stream went silent for ${timeouts.idleMs} ms`;
    const error = new ProviderTimeoutError(`${this.#provider}/${this.#model}: ${what}`, {
      details: { provider: this.#provider, model: this.#model, phase },
    });
    this.#failAndAbort(error);
  }

  /** The idle watchdog wakes once per idle period; chunks only stamp the time. */
  checkIdle(): void {
    if (this.#settled || this.#idleTimer === undefined) return;
    // A paused stream is silent because its reader is slow; the reader's own deadline governs.
    const silentFor = this.#paused ? 0 : performance.now() - this.#lastChunkAt;
    if (silentFor >= this.#timeouts.idleMs) this.expire('idle');
    else this.#idleTimer = coarseTimer.schedule(this.#timeouts.idleMs - silentFor, checkIdle, this);
  }

  /**
   * A streamed chunk's text. Chunks that end on a character boundary decode on their own; from
   * the first chunk that may not, a decoder carries the unfinished bytes over for the rest of the
   * reply (the same text either way: a fresh decoder given a chunk that ends on a boundary
   * returns what `toString` returns).
   */
  #decode(chunk: Buffer): string {
    let decoder = this.#decoder;
    if (decoder === undefined) {
      if (!mayEndInsideCharacter(chunk)) return chunk.toString('utf8');
      decoder = new StringDecoder('utf8');
      this.#decoder = decoder;
    }
    return decoder.write(chunk);
  }

  #onFirstDelta(): void {
    coarseTimer.cancel(this.#firstTokenTimer);
    this.#firstTokenTimer = undefined;
    this.#watchIdle();
  }

  /** Until the first token, the first-token limit governs; after it (or without streaming), idleness. */
  #watchIdle(): void {
    if (this.#idleTimer !== undefined) return;
    this.#lastChunkAt = performance.now();
    this.#idleTimer = coarseTimer.schedule(this.#timeouts.idleMs, checkIdle, this);
  }

  #succeed(result: ChatResult): void {
    if (this.#settled) return;
    const resolve = this.#resolve!;
    this.#cleanup();
    resolve(result);
  }

  #fail(error: Error | AgentdError): void {
    if (this.#settled) return;
    const reject = this.#reject!;
    this.#cleanup();
    reject(error);
  }

  /** Fails the call and stops the upstream request (a deadline, a cancellation, a broken stream). */
  #failAndAbort(error: Error | AgentdError): void {
    const controller = this.#controller;
    // A request undici has not started yet is aborted when it starts (`onRequestStart`).
    this.#abortReason ??= error;
    this.#fail(error);
    controller?.abort(error);
  }

  #cleanup(): void {
    this.#settled = true;
    coarseTimer.cancel(this.#headersTimer);
    coarseTimer.cancel(this.#firstTokenTimer);
    coarseTimer.cancel(this.#idleTimer);
    this.#cancellation?.remove(this);
    this.#cancellation = undefined;
    this.#sink = undefined;
    this.#assembler = undefined;
    this.#decoder = undefined;
    this.#messages = NO_MESSAGES;
    this.#chunks = undefined;
    this.#controller = undefined;
    this.#resolve = undefined;
    this.#reject = undefined;
  }
}

/** False when the last byte is ASCII: then no UTF-8 sequence is left unfinished. */
function mayEndInsideCharacter(chunk: Buffer): boolean {
  return chunk.length > 0 && chunk[chunk.length - 1]! >= 0x80;
}

function expireHeaders(call: ChatCall): void {
  call.expire('headers');
}

function expireFirstToken(call: ChatCall): void {
  call.expire('first_token');
}

function checkIdle(call: ChatCall): void {
  call.checkIdle();
}
