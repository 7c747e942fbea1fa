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
  /** `null`: known not to exist, with nothing queued for it (a new session's first turn). */
  readonly #rows = new Map<string, SessionRecord | null>();
  readonly #maxSessions: number;

  constructor(maxSessions = 4096) {
    this.#maxSessions = maxSessions;
  }

  get size(): number {
    return this.#rows.size;
  }

  /**
   * A copy of the cached row (callers may keep or change it), null when the session is known not
   * to exist, undefined when not cached.
   */
  get(id: string): SessionRecord | null | undefined {
    const row = this.#rows.get(id);
    return row === undefined || row === null ? row : copyRow(row);
  }

  /** Caches a row read from storage, or (null) that storage has none. */
  fill(id: string, row: SessionRecord | null): void {
    this.#rows.delete(id);
    this.#rows.set(id, row === null ? null : copyRow(row));
    if (this.#rows.size > this.#maxSessions) this.#rows.delete(this.#rows.keys().next().value as string);
  }

  /**
   * Messages queued for a cached session: what the store's session upsert will add (for a session
   * known not to exist, the row it will create).
   */
  appended(
    id: string,
    tenantId: string,
    count: number,
    bytes: number,
    windowTokens: number,
    at: number,
  ): void {
    const row = this.#rows.get(id);
    if (row === undefined) return;
    if (row === null) {
      this.#rows.set(id, {
        id,
        tenant_id: tenantId,
        created_at: at,
        updated_at: at,
        message_count: count,
        tokens_used: 0,
        usd_used: 0,
        first_seq: 1,
        bytes,
        window_tokens: windowTokens,
        summary_through: 0,
        summary: null,
        summary_tokens: 0,
      });
      return;
    }
    row.message_count += count;
    row.bytes += bytes;
    row.window_tokens += windowTokens;
    row.updated_at = at;
  }

  /** Usage queued for a cached session. */
  used(id: string, tokens: number, usd: number): void {
    const row = this.#rows.get(id);
    if (row === undefined) return;
    if (row === null) {
      // Usage is applied after the batch's appends: whether it lands depends on what else is queued.
      this.#rows.delete(id);
      return;
    }
    row.tokens_used += tokens;
    row.usd_used += usd;
  }

  /** The retained message count and bytes of a cached session (what its caps compare). */
  retained(id: string): [count: number, bytes: number] | undefined {
    const row = this.#rows.get(id);
    if (row === undefined) return undefined;
    return row === null ? [0, 0] : [row.message_count - row.first_seq + 1, row.bytes];
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
