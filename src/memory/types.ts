/**
 * The long-term memory model: records, scopes, search queries and the storage contract that a
 * SQLite (default) or Postgres adapter implements.
 */

/** Who a memory belongs to. The tenant is always enforced; the other parts narrow it. */
export interface MemoryScope {
  tenant_id: string;
  user_id?: string | null | undefined;
  agent_id?: string | null | undefined;
  session_id?: string | null | undefined;
}

/** A stored memory as returned by the API. Times are milliseconds since the epoch. */
export interface MemoryRecord {
  id: string;
  tenant_id: string;
  user_id: string | null;
  agent_id: string | null;
  session_id: string | null;
  text: string;
  metadata: Record<string, unknown>;
  tags: string[];
  /** 0..1; callers may rank or filter by it. */
  importance: number;
  created_at: number;
  updated_at: number;
  /** After this instant the memory is no longer returned (and is purged by `purgeExpired`). */
  expires_at: number | null;
}

/** What a caller supplies to add a memory. */
export interface NewMemory {
  text: string;
  user_id?: string | null | undefined;
  agent_id?: string | null | undefined;
  session_id?: string | null | undefined;
  metadata?: Record<string, unknown> | undefined;
  tags?: string[] | undefined;
  importance?: number | undefined;
  expires_at?: number | null | undefined;
  /** A precomputed embedding (must have the store's dimension); computed from `text` otherwise. */
  embedding?: Float32Array | number[] | undefined;
}

/** Fields an update may change; absent fields stay as they are. */
export interface MemoryPatch {
  text?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
  tags?: string[] | undefined;
  importance?: number | undefined;
  expires_at?: number | null | undefined;
}

/** The part of a record kept in the audit trail (no embedding). */
export type MemorySnapshot = Omit<MemoryRecord, 'id' | 'tenant_id' | 'created_at'>;

export type MemoryAction = 'add' | 'update' | 'delete';

/** One change of one memory, with its values before and after. */
export interface MemoryHistoryEntry {
  seq: number;
  memory_id: string;
  action: MemoryAction;
  old: MemorySnapshot | null;
  new: MemorySnapshot | null;
  at: number;
}

/** A comparison on one metadata field. A bare value means `eq`. */
export interface FieldCondition {
  eq?: unknown;
  ne?: unknown;
  in?: unknown[];
  nin?: unknown[];
  gt?: number | string;
  gte?: number | string;
  lt?: number | string;
  lte?: number | string;
  /** Substring of a string field, or element of an array field. */
  contains?: unknown;
  exists?: boolean;
}

/**
 * A metadata filter: `{ and: [...] }`, `{ or: [...] }`, `{ not: {...} }`, or an object of
 * `field: value | FieldCondition` pairs that must all hold. Fields are metadata keys; dots reach
 * into nested objects.
 */
export type MetadataFilter =
  | { and: MetadataFilter[] }
  | { or: MetadataFilter[] }
  | { not: MetadataFilter }
  | {
      [field: string]: unknown;
    };

/** Everything that narrows a search or a listing, applied before any top-k cut. */
export interface MemoryFilter {
  user_id?: string | undefined;
  agent_id?: string | undefined;
  session_id?: string | undefined;
  metadata?: MetadataFilter | undefined;
  /** Memories carrying every one of these tags. */
  tags?: string[] | undefined;
  /** Memories carrying at least one of these tags. */
  tags_any?: string[] | undefined;
  created_after?: number | undefined;
  created_before?: number | undefined;
  updated_after?: number | undefined;
  updated_before?: number | undefined;
}

export const SEARCH_MODES = ['exact', 'fulltext', 'semantic', 'hybrid'] as const;
export type SearchMode = (typeof SEARCH_MODES)[number];

export interface SearchQuery {
  tenant_id: string;
  /** The query text: matched by full text, and embedded for semantic search. */
  text?: string | undefined;
  /** A query vector for semantic search (instead of embedding `text`). */
  vector?: Float32Array | number[] | undefined;
  mode?: SearchMode | undefined;
  filter?: MemoryFilter | undefined;
  top_k?: number | undefined;
  /** Results scoring below this are dropped (the score of the mode: cosine, BM25 or RRF). */
  min_score?: number | undefined;
  /** Hybrid weights of the full-text and semantic rankings (default 1 and 0.5). */
  weights?: { fulltext?: number | undefined; semantic?: number | undefined } | undefined;
}

/** The score a search component gave a hit, and its rank there (1 = best). */
export interface ComponentScore {
  score: number;
  rank: number;
}

export interface SearchHit {
  memory: MemoryRecord;
  score: number;
  scores: { fulltext?: ComponentScore; semantic?: ComponentScore; exact?: ComponentScore };
}

export interface SearchResult {
  hits: SearchHit[];
  mode: SearchMode;
  /** How vectors were searched: `exact` over the filtered set, or the `hnsw` index. */
  strategy: 'exact' | 'hnsw' | 'none';
  /** Memories that passed the filter (for the planner and for callers' curiosity). */
  candidates: number;
}

export interface ListQuery {
  tenant_id: string;
  filter?: MemoryFilter | undefined;
  limit: number;
  cursor?: string | undefined;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** A record with its storage row key, used by indexes that key vectors by integer. */
export interface KeyedMemory {
  key: number;
  record: MemoryRecord;
}

/** A vector as stored: its row key and values. */
export interface StoredVector {
  key: number;
  vector: Float32Array;
}

/** A stored vector with what indexes need to know of its memory. */
export interface IndexedVector extends StoredVector {
  tenant_id: string;
  text: string;
  expires_at: number | null;
}

/** What changed after a history sequence: each changed or deleted key once, and the newest sequence. */
export interface MemoryChanges {
  keys: number[];
  /** The tenant of each key, by position (deleted keys can no longer be looked up). */
  tenants: string[];
  seq: number;
}

/** Which embedder produced the stored vectors. */
export interface EmbedderStamp {
  name: string;
  dimensions: number;
}

/**
 * Durable memory storage. Every write is one transaction that changes the record, its vector,
 * its full-text entry and its history together, so nothing is ever left half-written.
 */
export interface MemoryStorage {
  readonly kind: string;
  /** The embedder recorded with the data, if any data was written. */
  embedder(): Promise<EmbedderStamp | undefined>;
  setEmbedder(stamp: EmbedderStamp): Promise<void>;
  insert(items: { record: MemoryRecord; vector: Float32Array }[]): Promise<KeyedMemory[]>;
  get(tenantId: string, id: string): Promise<KeyedMemory | undefined>;
  /** Applies a change (and a new vector when the text changed); undefined when not found. */
  update(
    tenantId: string,
    id: string,
    patch: MemoryPatch,
    vector: Float32Array | undefined,
    now: number,
  ): Promise<KeyedMemory | undefined>;
  /** Deletes record, vector and full-text entry; the key it had, or undefined when not found. */
  delete(tenantId: string, id: string, now: number): Promise<number | undefined>;
  list(query: ListQuery, now: number): Promise<Page<MemoryRecord>>;
  history(tenantId: string, id: string): Promise<MemoryHistoryEntry[]>;
  /** Row keys of the live memories that pass the filter. */
  filterKeys(tenantId: string, filter: MemoryFilter | undefined, now: number): Promise<number[]>;
  /** Counts the live memories that pass the filter. */
  count(tenantId: string, filter: MemoryFilter | undefined, now: number): Promise<number>;
  /** BM25 full-text matches that pass the filter, best first (score: higher is better). */
  fulltext(
    tenantId: string,
    text: string,
    filter: MemoryFilter | undefined,
    limit: number,
    now: number,
  ): Promise<{ key: number; score: number }[]>;
  /** Memories whose text contains `text` (case-insensitive) and that pass the filter. */
  exact(
    tenantId: string,
    text: string,
    filter: MemoryFilter | undefined,
    limit: number,
    now: number,
  ): Promise<number[]>;
  /** Records by row key, for keys that still exist. */
  byKeys(keys: number[]): Promise<Map<number, MemoryRecord>>;
  /** Vectors of the keys that still exist. */
  vectorsByKeys(keys: number[]): Promise<Map<number, Float32Array>>;
  /** Every stored vector, in key order (to load indexes). */
  vectors(): AsyncIterable<IndexedVector[]>;
  /** Replaces every vector (re-index), one batch at a time. */
  replaceVectors(batch: StoredVector[]): Promise<void>;
  /**
   * Keys changed or deleted since history sequence `afterSeq`, and the latest sequence. Sequences
   * are assigned in commit order, so a reader that has seen sequence n never misses a change
   * numbered below it (this is how nodes sharing storage keep their vector indexes current).
   */
  changesSince(afterSeq: number): Promise<MemoryChanges>;
  /** Removes memories past their `expires_at` (recording each in history); what was removed. */
  purgeExpired(now: number): Promise<{ key: number; tenant_id: string; text: string }[]>;
  close(): Promise<void>;
}
