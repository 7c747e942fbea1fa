import { StringDecoder } from 'node:string_decoder';
import { Pool } from 'undici';
import type { AgentdError } from '../errors.js';
import { ProviderStreamTruncatedError, ProviderTimeoutError } from '../errors.js';
import { abortReason, LinkedAbortController } from '../lib/abort.js';
import { coarseTimer, type TimerEntry } from '../lib/coarse-timer.js';
import { ChatStreamAssembler, resultFromCompletion } from './chat-stream.js';
import {
  classifyHttpError,
  classifyTransportError,
  parseRetryAfter,
  readUpstreamError,
} from './provider-errors.js';
import type { CallOptions, ChatMessage, ChatRequest, ChatResult, Provider } from './types.js';

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
  /** Negotiate HTTP/2 where the provider offers it (TLS + ALPN). */
  http2?: boolean;
  connectTimeoutMs?: number;
  /** Ask for usage in the stream (`stream_options.include_usage`); most providers support it. */
  streamUsage?: boolean;
}

/** Dispatcher fields undici needs per request. */
interface RequestShape {
  path: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal;
  headersTimeout: number;
  bodyTimeout: number;
}

/**
 * A provider for any OpenAI-compatible chat completions endpoint (OpenAI, DeepSeek, Ollama,
 * vLLM, llama.cpp server, agentd's own mock). One undici Pool per provider keeps connections
 * alive; streamed replies are parsed chunk by chunk and never re-copied.
 */
export class OpenAICompatibleProvider implements Provider {
  readonly name: string;
  readonly #pool: Pool;
  readonly #path: string;
  readonly #headers: Record<string, string>;
  readonly #streamUsage: boolean;

  constructor(options: OpenAICompatibleOptions) {
    this.name = options.name;
    const url = new URL(options.baseUrl);
    this.#path = `${url.pathname.replace(/\/+$/, '')}/chat/completions`;
    this.#headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    if (options.apiKey) this.#headers.authorization = `Bearer ${options.apiKey}`;
    Object.assign(this.#headers, options.headers);
    this.#streamUsage = options.streamUsage ?? true;
    this.#pool = new Pool(url.origin, {
      connections: options.connections ?? 128,
      pipelining: 1,
      allowH2: options.http2 ?? false,
      keepAliveTimeout: 30_000,
      connect: { timeout: options.connectTimeoutMs ?? 10_000 },
    });
  }

  async chat(request: ChatRequest, options: CallOptions): Promise<ChatResult> {
    const stream = options.stream ?? true;
    const controller = new LinkedAbortController(options.signal);
    const startedAt = performance.now();
    let ttftTimer: TimerEntry | undefined;
    let assembler: ChatStreamAssembler | undefined;
    if (stream) {
      assembler = new ChatStreamAssembler(options.sink, startedAt);
      ttftTimer = coarseTimer.schedule(options.timeouts.firstTokenMs, abortOnSlowFirstToken, controller);
      assembler.onFirstDelta = () => coarseTimer.cancel(ttftTimer);
    }
    const headers = options.traceparent
      ? { ...this.#headers, traceparent: options.traceparent }
      : this.#headers;
    const shape: RequestShape = {
      path: this.#path,
      method: 'POST',
      headers,
      body: this.#serialize(request, stream),
      signal: controller.signal,
      headersTimeout: options.timeouts.headersMs,
      bodyTimeout: options.timeouts.idleMs,
    };
    try {
      const response = await this.#pool.request(shape);
      if (response.statusCode >= 300) {
        const retryAfterMs = parseRetryAfter(response.headers);
        const { error } = await readUpstreamError(response.body);
        throw classifyHttpError(this.name, request.model, response.statusCode, error, retryAfterMs);
      }
      if (assembler === undefined) return resultFromCompletion(await response.body.json(), request.messages);
      return await consumeStream(response.body, assembler, request.messages, this.name, request.model);
    } catch (err) {
      throw this.#mapError(err, controller.signal, assembler, request.model);
    } finally {
      coarseTimer.cancel(ttftTimer);
      controller.dispose();
    }
  }

  close(): Promise<void> {
    return this.#pool.close();
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

  #mapError(
    err: unknown,
    signal: AbortSignal,
    assembler: ChatStreamAssembler | undefined,
    model: string,
  ): AgentdError | Error {
    if (signal.aborted) return abortReason(signal);
    if (
      (err as { code?: unknown }).code !== undefined &&
      typeof (err as { code: unknown }).code === 'string'
    ) {
      const code = (err as { code: string }).code;
      if (code.startsWith('AGENTD_')) return err as AgentdError;
    }
    return classifyTransportError(this.name, model, err, assembler?.started ?? false);
  }
}

function abortOnSlowFirstToken(controller: AbortController): void {
  controller.abort(
    new ProviderTimeoutError('no first token within the time-to-first-token limit', {
      details: { phase: 'first_token' },
    }),
  );
}

type Body = NodeJS.ReadableStream & { destroy(error?: Error): void };

/**
 * Reads an SSE body into the assembler. Resolves as soon as the reply is complete (finish reason
 * and usage, or `[DONE]`), leaving the remainder of the body to drain so the connection is reused.
 * An end of stream before a finish reason is a truncation, never a success.
 */
function consumeStream(
  body: Body,
  assembler: ChatStreamAssembler,
  messages: readonly ChatMessage[],
  provider: string,
  model: string,
): Promise<ChatResult> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (error: Error | undefined): void => {
      if (settled) return;
      settled = true;
      if (error !== undefined) reject(error);
      else resolve(assembler.result(messages));
    };
    // undici's body ignores setEncoding; a decoder keeps multi-byte characters split across chunks whole.
    const decoder = new StringDecoder('utf8');
    body.on('data', (chunk: Buffer) => {
      if (settled) return;
      assembler.feed(decoder.write(chunk));
      if (assembler.failure !== undefined) {
        settle(assembler.failure);
        body.destroy();
      } else if (assembler.complete) {
        settle(undefined);
      }
    });
    body.on('end', () => {
      if (assembler.failure !== undefined) settle(assembler.failure);
      else if (assembler.finished || assembler.done) settle(undefined);
      else
        settle(
          new ProviderStreamTruncatedError(`${provider}/${model}: the stream ended before a finish reason`, {
            details: { provider, model },
          }),
        );
    });
    body.on('error', (err: Error) => {
      // A reply that already has its finish reason is complete even if the tail breaks.
      if (assembler.finished && assembler.failure === undefined) settle(undefined);
      else settle(err);
    });
  });
}
