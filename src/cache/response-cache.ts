import { createHash } from 'node:crypto';
import type { ChatRequest, FinishReason, ToolCall, Usage } from '../llm/index.js';
import type { MultiLevelCache } from './multi-level.js';

/** A model reply kept for replay: its streamed pieces in order, tool calls and usage. */
export interface CachedReply {
  chunks: string[];
  toolCalls: ToolCall[];
  finishReason: FinishReason;
  /** What the original call used (a replay costs nothing). */
  usage: Usage;
  model: string;
}

/**
 * Exact-match cache of model replies. Only deterministic requests are cached — temperature 0,
 * or an explicit `cache: true` — keyed per tenant on the normalised request (model, messages,
 * tools, parameters), so one tenant never sees another's answers.
 */
export class ResponseCache {
  readonly #cache: MultiLevelCache<CachedReply>;
  readonly ttlMs: number;

  constructor(cache: MultiLevelCache<CachedReply>, ttlMs: number) {
    this.#cache = cache;
    this.ttlMs = ttlMs;
  }

  /** True for requests whose answer may be reused. */
  static cacheable(request: Omit<ChatRequest, 'model'>, explicit: boolean): boolean {
    return explicit || request.temperature === 0;
  }

  /** The cache key: a hash of the tenant, the model and the request in canonical JSON. */
  static key(tenant: string, model: string, request: Omit<ChatRequest, 'model'>): string {
    const hash = createHash('sha256');
    hash.update(tenant).update('\u0000').update(model).update('\u0000');
    hash.update(
      JSON.stringify([
        request.messages,
        request.tools ?? null,
        request.temperature ?? null,
        request.maxTokens ?? null,
        canonical(request.extra),
      ]),
    );
    return hash.digest('base64url');
  }

  /** The cached reply, else `call()`'s — concurrent identical requests make one call. */
  get(
    tenant: string,
    key: string,
    call: () => Promise<CachedReply>,
  ): CachedReply | undefined | Promise<CachedReply | undefined> {
    return this.#cache.get(key, call, { ttlMs: this.ttlMs, tags: [`tenant:${tenant}`] });
  }

  /** Forgets every cached reply of a tenant. */
  invalidateTenant(tenant: string): Promise<void> {
    return this.#cache.invalidateTag(`tenant:${tenant}`);
  }
}

/** JSON with object keys sorted, so equal parameters hash equally. */
function canonical(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value ?? null;
  if (Array.isArray(value)) return value.map(canonical);
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort())
    sorted[key] = canonical((value as Record<string, unknown>)[key]);
  return sorted;
}
