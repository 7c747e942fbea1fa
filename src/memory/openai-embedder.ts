import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import { request } from 'undici';
import {
  type AgentdError,
  ProviderAuthError,
  ProviderProtocolError,
  ProviderRateLimitedError,
  ProviderRejectedError,
  ProviderUnavailableError,
} from '../errors.js';
import type { Embedder } from './embedder.js';

export interface OpenAiEmbedderOptions {
  /** Base URL up to `/v1` (e.g. `https://api.openai.com/v1`). */
  baseUrl: string;
  apiKey?: string | undefined;
  model: string;
  /** Expected vector size; a provider returning another size is an error. */
  dimensions: number;
  /** Send `dimensions` in the request (models that can shorten their vectors). */
  requestDimensions?: boolean;
  /** Texts per request (default 128). */
  batchSize?: number;
  /** Attempts per batch on 429, 5xx and network errors (default 4). */
  maxAttempts?: number;
  /** Vectors kept by content hash (default 10,000). */
  cacheEntries?: number;
  timeoutMs?: number;
}

interface EmbeddingsResponse {
  data?: { index?: number; embedding?: number[] | string }[];
}

function decode(embedding: number[] | string | undefined): Float32Array | undefined {
  if (Array.isArray(embedding)) return Float32Array.from(embedding);
  if (typeof embedding === 'string') {
    const bytes = Buffer.from(embedding, 'base64');
    const out = new Float32Array(bytes.byteLength / 4);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  return undefined;
}

function retryable(error: AgentdError): boolean {
  return error.code === ProviderRateLimitedError.code || error.code === ProviderUnavailableError.code;
}

/**
 * An OpenAI-compatible `/v1/embeddings` client: batches texts, retries transient failures with
 * backoff (honouring `Retry-After`), caches vectors by content hash, and checks every vector's
 * dimension — a mismatch is an error, never a silently mixed index.
 */
export class OpenAiEmbedder implements Embedder {
  readonly name: string;
  readonly dimensions: number;
  readonly #options: OpenAiEmbedderOptions;
  readonly #url: string;
  readonly #cache: LRUCache<string, Float32Array>;

  constructor(options: OpenAiEmbedderOptions) {
    this.#options = options;
    this.dimensions = options.dimensions;
    this.name = `openai:${options.model}`;
    this.#url = `${options.baseUrl.replace(/\/+$/, '')}/embeddings`;
    this.#cache = new LRUCache({ max: options.cacheEntries ?? 10_000 });
  }

  async embedQuery(text: string, signal?: AbortSignal): Promise<Float32Array> {
    const [vector] = await this.embedDocuments([text], signal);
    return vector!;
  }

  async embedDocuments(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]> {
    const out: (Float32Array | undefined)[] = new Array(texts.length);
    const missing: number[] = [];
    const keys = texts.map((text) => createHash('sha256').update(text).digest('base64url'));
    for (let i = 0; i < texts.length; i++) {
      const hit = this.#cache.get(keys[i]!);
      if (hit !== undefined) out[i] = hit;
      else missing.push(i);
    }
    const batchSize = this.#options.batchSize ?? 128;
    for (let start = 0; start < missing.length; start += batchSize) {
      const indexes = missing.slice(start, start + batchSize);
      const vectors = await this.#batch(
        indexes.map((i) => texts[i]!),
        signal,
      );
      for (let j = 0; j < indexes.length; j++) {
        const i = indexes[j]!;
        out[i] = vectors[j]!;
        this.#cache.set(keys[i]!, vectors[j]!);
      }
    }
    return out as Float32Array[];
  }

  async #batch(texts: string[], signal: AbortSignal | undefined): Promise<Float32Array[]> {
    const attempts = this.#options.maxAttempts ?? 4;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#post(texts, signal);
      } catch (err) {
        const error = err as AgentdError;
        if (attempt >= attempts || typeof error.code !== 'string' || !retryable(error)) throw err;
        const backoff = Math.min(4000, 100 * 2 ** (attempt - 1));
        await delay(error.retryAfterMs ?? backoff / 2 + (Math.random() * backoff) / 2, undefined, { signal });
      }
    }
  }

  async #post(texts: string[], signal: AbortSignal | undefined): Promise<Float32Array[]> {
    const body: Record<string, unknown> = {
      model: this.#options.model,
      input: texts,
      encoding_format: 'base64',
    };
    if (this.#options.requestDimensions === true) body.dimensions = this.dimensions;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.#options.apiKey !== undefined) headers.authorization = `Bearer ${this.#options.apiKey}`;
    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(this.#url, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal,
        headersTimeout: this.#options.timeoutMs ?? 30_000,
        bodyTimeout: this.#options.timeoutMs ?? 30_000,
      });
    } catch (err) {
      if (signal?.aborted === true) throw err;
      throw new ProviderUnavailableError(`embeddings request failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const text = await response.body.text();
    const status = response.statusCode;
    if (status !== 200) {
      const message = `embeddings provider answered ${status}: ${text.slice(0, 200)}`;
      if (status === 429) {
        const after = Number(response.headers['retry-after']);
        throw new ProviderRateLimitedError(message, {
          ...(Number.isFinite(after) ? { retryAfterMs: after * 1000 } : {}),
        });
      }
      if (status === 401 || status === 403) throw new ProviderAuthError(message);
      if (status >= 500) throw new ProviderUnavailableError(message);
      throw new ProviderRejectedError(message);
    }
    let parsed: EmbeddingsResponse;
    try {
      parsed = JSON.parse(text) as EmbeddingsResponse;
    } catch {
      throw new ProviderProtocolError('embeddings response is not JSON');
    }
    const data = parsed.data;
    if (!Array.isArray(data) || data.length !== texts.length)
      throw new ProviderProtocolError(
        `embeddings response has ${data?.length ?? 0} vectors for ${texts.length} inputs`,
      );
    const out: Float32Array[] = new Array(texts.length);
    for (let i = 0; i < data.length; i++) {
      const item = data[i]!;
      const vector = decode(item.embedding);
      const index = item.index ?? i;
      if (vector === undefined || index < 0 || index >= texts.length)
        throw new ProviderProtocolError('embeddings response has a malformed vector');
      if (vector.length !== this.dimensions) {
        throw new ProviderProtocolError(
          `embedder "${this.name}" returned ${vector.length} dimensions, configured for ${this.dimensions}`,
          { details: { expected: this.dimensions, got: vector.length } },
        );
      }
      out[index] = vector;
    }
    return out;
  }
}
