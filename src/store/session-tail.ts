import type { ChatMessage } from '../llm/index.js';
import { trimTail, type WindowRow } from './window.js';

/** The newest messages of one session, oldest first, as the store last wrote or read them. */
export interface SessionTail {
  rows: WindowRow[];
  /** True when `rows` holds every message after the summary (the window can never need more). */
  complete: boolean;
  summary: WindowRow | undefined;
  /** Most rows kept: the largest window this session was read with. */
  capacity: number;
  /** Approximate bytes held (message JSON), for the cache's bound. */
  bytes: number;
}

export interface SessionTailCacheOptions {
  /** Most sessions kept (default 4,096). */
  maxSessions?: number;
  /** Most bytes of message JSON kept over all sessions (default 32 MiB). */
  maxBytes?: number;
}

/**
 * Recent messages of recently used sessions, kept in step with the store's own writes, so that a
 * session's next window is read without SQL or JSON parsing. The store owns coherence: it extends
 * a tail on append, drops it on any other change to the session, and clears everything when
 * another connection wrote to the file. Bounded by sessions and bytes; the oldest entries go first.
 */
export class SessionTailCache {
  readonly #tails = new Map<string, SessionTail>();
  readonly #maxSessions: number;
  readonly #maxBytes: number;
  #bytes = 0;

  constructor(options: SessionTailCacheOptions = {}) {
    this.#maxSessions = options.maxSessions ?? 4096;
    this.#maxBytes = options.maxBytes ?? 32 * 1024 * 1024;
  }

  get size(): number {
    return this.#tails.size;
  }

  /** The window from the cached tail, or undefined when the tail cannot answer it. */
  window(sessionId: string, maxMessages: number, maxTokens: number): ChatMessage[] | undefined {
    const tail = this.#tails.get(sessionId);
    if (tail === undefined || (!tail.complete && tail.rows.length < maxMessages)) return undefined;
    return trimTail(tail.rows, maxMessages, maxTokens, tail.summary);
  }

  /**
   * Caches a tail read from storage (rows oldest first; `complete` when fewer than asked) for
   * windows of up to `maxMessages`: the tail keeps that many rows as it grows, so a session whose
   * history is still shorter than its window keeps being answered from memory.
   */
  fill(
    sessionId: string,
    rows: WindowRow[],
    bytes: number,
    complete: boolean,
    summary: WindowRow | undefined,
    maxMessages: number,
  ): void {
    this.drop(sessionId);
    const capacity = Math.max(rows.length, maxMessages, 16);
    const tail: SessionTail = { rows, complete, summary, capacity, bytes };
    this.#tails.set(sessionId, tail);
    this.#bytes += bytes;
    this.#evict();
  }

  /** Extends a cached tail with messages just committed (nothing to do for an uncached session). */
  append(sessionId: string, rows: readonly WindowRow[], bytes: number): void {
    const tail = this.#tails.get(sessionId);
    if (tail === undefined) return;
    for (const row of rows) tail.rows.push(row);
    tail.bytes += bytes;
    this.#bytes += bytes;
    const excess = tail.rows.length - tail.capacity;
    if (excess > 0) {
      // Bytes of the dropped rows are not tracked per row: scale down proportionally.
      const dropped = Math.round((tail.bytes * excess) / tail.rows.length);
      tail.rows.splice(0, excess);
      tail.bytes -= dropped;
      this.#bytes -= dropped;
      tail.complete = false;
    }
    this.#evict();
  }

  drop(sessionId: string): void {
    const tail = this.#tails.get(sessionId);
    if (tail === undefined) return;
    this.#tails.delete(sessionId);
    this.#bytes -= tail.bytes;
  }

  clear(): void {
    this.#tails.clear();
    this.#bytes = 0;
  }

  #evict(): void {
    while (this.#tails.size > this.#maxSessions || (this.#bytes > this.#maxBytes && this.#tails.size > 0)) {
      const oldest = this.#tails.keys().next().value as string;
      this.drop(oldest);
    }
  }
}
