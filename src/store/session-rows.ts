import type { SessionRecord } from './types.js';

/**
 * Session rows of recently used sessions as they stand once the store's queued writes are
 * committed: filled from storage, then moved by the store's own appends and usage as it queues
 * them. A session's next task checks its session (tenant, idle TTL, budget) from here, without SQL
 * and without committing the previous turn early. The store owns coherence: it drops a row on any
 * other change to the session and clears everything when another connection wrote to the file or
 * a commit failed. Bounded by sessions; the least recently filled go first.
 */
export class SessionRowCache {
  readonly #rows = new Map<string, SessionRecord>();
  readonly #maxSessions: number;

  constructor(maxSessions = 4096) {
    this.#maxSessions = maxSessions;
  }

  get size(): number {
    return this.#rows.size;
  }

  /** A copy of the cached row (callers may keep or change it), or undefined when not cached. */
  get(id: string): SessionRecord | undefined {
    const row = this.#rows.get(id);
    return row === undefined ? undefined : copyRow(row);
  }

  /** Caches a row read from storage. */
  fill(row: SessionRecord): void {
    this.#rows.delete(row.id);
    this.#rows.set(row.id, copyRow(row));
    if (this.#rows.size > this.#maxSessions) this.#rows.delete(this.#rows.keys().next().value as string);
  }

  /** Messages queued for a cached session: what the store's session upsert will add. */
  appended(id: string, count: number, bytes: number, windowTokens: number, at: number): void {
    const row = this.#rows.get(id);
    if (row === undefined) return;
    row.message_count += count;
    row.bytes += bytes;
    row.window_tokens += windowTokens;
    row.updated_at = at;
  }

  /** Usage queued for a cached session. */
  used(id: string, tokens: number, usd: number): void {
    const row = this.#rows.get(id);
    if (row === undefined) return;
    row.tokens_used += tokens;
    row.usd_used += usd;
  }

  /** The retained message count and bytes of a cached session (what its caps compare). */
  retained(id: string): [count: number, bytes: number] | undefined {
    const row = this.#rows.get(id);
    return row === undefined ? undefined : [row.message_count - row.first_seq + 1, row.bytes];
  }

  drop(id: string): void {
    this.#rows.delete(id);
  }

  clear(): void {
    this.#rows.clear();
  }
}

/** A field-by-field copy: one fixed shape for every row. */
function copyRow(row: SessionRecord): SessionRecord {
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    created_at: row.created_at,
    updated_at: row.updated_at,
    message_count: row.message_count,
    tokens_used: row.tokens_used,
    usd_used: row.usd_used,
    first_seq: row.first_seq,
    bytes: row.bytes,
    window_tokens: row.window_tokens,
    summary_through: row.summary_through,
    summary: row.summary,
    summary_tokens: row.summary_tokens,
  };
}
