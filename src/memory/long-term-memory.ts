import { ConflictError, InvalidRequestError } from '../errors.js';
import { uuidv7 } from '../lib/ids.js';
import type { Span } from '../observability/index.js';
import type { Embedder } from './embedder.js';
import { LexicalIndex } from './lexical-index.js';
import { ScopeCatalog } from './scope-catalog.js';
import { MemorySearch, type SearchObserver } from './search.js';
import type {
  EmbedderStamp,
  ListQuery,
  MemoryHistoryEntry,
  MemoryPatch,
  MemoryRecord,
  MemoryScope,
  MemoryStorage,
  NewMemory,
  Page,
  SearchQuery,
  SearchResult,
} from './types.js';
import { checkNewMemory, checkPatch, checkVector, type MemoryLimits } from './validate.js';
import { VectorIndex, type VectorIndexOptions } from './vector-index.js';

export interface LongTermMemoryOptions {
  storage: MemoryStorage;
  embedder: Embedder;
  limits?: Partial<MemoryLimits>;
  index?: Omit<VectorIndexOptions, 'dimensions'>;
  /** Where the HNSW index is saved between runs (none: rebuilt from storage at start). */
  indexPath?: string | undefined;
  /** Memories per add request (default 1,000). */
  maxBatch?: number;
  /** Metrics and tracing of searches. */
  observer?: SearchObserver | undefined;
  /**
   * Other processes write to the same storage (nodes sharing Postgres): every search first
   * applies their changes to the vector index (one indexed read when there are none).
   */
  shared?: boolean | undefined;
}

/** The in-memory indexes a stored memory is tracked in. */
interface Indexes {
  catalog: ScopeCatalog;
  lexical: LexicalIndex;
  index: VectorIndex;
  embedder: Embedder;
}

/** Memories read per round trip when catching up on other processes' changes. */
const CATCH_UP_BATCH = 5000;

/** A memory with everything an import carries (id and times kept as exported). */
export type ImportedMemory = NewMemory & { id?: string; created_at?: number; updated_at?: number };

/**
 * Long-term memory: validated writes that change text, vector, full-text entry and history in
 * one transaction; an in-memory vector index kept in step; and one search API. Every operation
 * is scoped by tenant. The embedder that produced the stored vectors is recorded; opening with
 * another one leaves vectors untouched and refuses vector work until `reindex` runs.
 */
export class LongTermMemory {
  readonly storage: MemoryStorage;
  readonly limits: MemoryLimits;
  #embedder: Embedder;
  #index: VectorIndex;
  readonly #indexOptions: Omit<VectorIndexOptions, 'dimensions'>;
  readonly #indexPath: string | undefined;
  /** Memories one `add` may carry. */
  readonly maxBatch: number;
  readonly #search: MemorySearch;
  /** Scope and expiry of every indexed memory: scoped searches need no storage query. */
  #catalog = new ScopeCatalog();
  /** BM25 over the indexed memories, per partition: the lexical side of hybrid search. */
  #lexical = new LexicalIndex();
  /** Set when the stored vectors came from another embedder. */
  #mismatch: EmbedderStamp | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  readonly #shared: boolean;
  /** The history sequence the index reflects (shared storage only). */
  #seq = 0;
  /** The catch-up that runs next, once the one in flight is done; searches arriving now join it. */
  #nextCatchUp: Promise<void> | undefined;
  #catchingUp: Promise<void> = Promise.resolve();

  private constructor(options: LongTermMemoryOptions) {
    this.storage = options.storage;
    this.#embedder = options.embedder;
    this.limits = {
      maxTextChars: options.limits?.maxTextChars ?? 32_000,
      maxTags: options.limits?.maxTags ?? 64,
      maxMetadataBytes: options.limits?.maxMetadataBytes ?? 16_384,
    };
    this.#indexOptions = options.index ?? {};
    this.#indexPath = options.indexPath;
    this.maxBatch = options.maxBatch ?? 1000;
    this.#index = new VectorIndex({ ...this.#indexOptions, dimensions: options.embedder.dimensions });
    this.#search = new MemorySearch(this.storage, options.observer);
    this.#shared = options.shared ?? false;
  }

  /** Opens the memory: checks the recorded embedder and loads vectors into the index. */
  static async open(options: LongTermMemoryOptions): Promise<LongTermMemory> {
    const memory = new LongTermMemory(options);
    await memory.#load();
    return memory;
  }

  get embedder(): Embedder {
    return this.#embedder;
  }

  /** The embedder the stored vectors came from, when it is not the configured one. */
  get embedderMismatch(): EmbedderStamp | undefined {
    return this.#mismatch;
  }

  get size(): number {
    return this.#index.size;
  }

  async #load(): Promise<void> {
    const stamp = await this.storage.embedder();
    const embedder = this.#embedder;
    if (stamp !== undefined && (stamp.name !== embedder.name || stamp.dimensions !== embedder.dimensions)) {
      this.#mismatch = stamp;
      return;
    }
    if (stamp === undefined)
      await this.storage.setEmbedder({ name: embedder.name, dimensions: embedder.dimensions });
    // Read before loading: changes made while loading are applied again by the first catch-up.
    if (this.#shared) this.#seq = (await this.storage.changesSince(Number.MAX_SAFE_INTEGER)).seq;
    const saved =
      this.#indexPath === undefined ? undefined : this.#index.load(this.#indexPath, embedder.name);
    for await (const batch of this.storage.vectors()) {
      const records = await this.storage.byKeys(batch.map((item) => item.key));
      this.#track(
        batch.map((item) => ({ key: item.key, record: records.get(item.key), vector: item.vector })),
      );
    }
    if (saved !== undefined) {
      const changes = await this.storage.changesSince(saved);
      this.#index.resync(changes.keys);
    }
    this.#index.ensureHnsw();
  }

  /**
   * Puts stored memories into the catalog, the lexical index, the embedder's statistics and (as one
   * batch) the vector index; idempotent (a catch-up may bring a memory again: it replaces what the
   * indexes held, and the embedder counts it once).
   */
  #track(
    batch: readonly { key: number; record: MemoryRecord | undefined; vector: Float32Array }[],
    into: Indexes = this.#indexes(),
  ): void {
    const vectors: { key: number; vector: Float32Array; partition: string }[] = [];
    for (const { key, record, vector } of batch) {
      if (record === undefined) continue;
      if (!into.index.has(key)) into.embedder.observe?.(record.text, 1);
      const partition = into.catalog.add(key, record);
      into.lexical.add(key, record.tenant_id, partition, record.text);
      vectors.push({ key, vector, partition });
    }
    into.index.upsertMany(vectors);
  }

  #indexes(): Indexes {
    return { catalog: this.#catalog, lexical: this.#lexical, index: this.#index, embedder: this.#embedder };
  }

  #requireEmbedder(): void {
    const stamp = this.#mismatch;
    if (stamp === undefined) return;
    throw new ConflictError(
      `stored memories were embedded by "${stamp.name}" (${stamp.dimensions} dimensions), not the configured "${this.#embedder.name}" (${this.#embedder.dimensions}): run \`agentd memory reindex\``,
      {
        details: {
          stored: stamp,
          configured: { name: this.#embedder.name, dimensions: this.#embedder.dimensions },
        },
      },
    );
  }

  /** Adds memories in one transaction; all or none. */
  async add(
    scope: MemoryScope,
    items: readonly ImportedMemory[],
    signal?: AbortSignal,
  ): Promise<MemoryRecord[]> {
    this.#requireEmbedder();
    if (items.length === 0) return [];
    if (items.length > this.maxBatch)
      throw new InvalidRequestError(`at most ${this.maxBatch} memories per request`, {
        details: { field: 'memories', max: this.maxBatch },
      });
    const batch = items.length > 1;
    const dimensions = this.#embedder.dimensions;
    const vectors: (Float32Array | undefined)[] = items.map((item, i) => {
      const at = batch ? `memories[${i}].` : '';
      checkNewMemory(item, at, this.limits);
      return item.embedding === undefined
        ? undefined
        : checkVector(item.embedding, dimensions, `${at}embedding`);
    });
    const missing: number[] = [];
    for (let i = 0; i < vectors.length; i++) if (vectors[i] === undefined) missing.push(i);
    if (missing.length > 0) {
      const embedded = await this.#embedder.embedDocuments(
        missing.map((i) => items[i]!.text),
        signal,
      );
      for (let j = 0; j < missing.length; j++) vectors[missing[j]!] = embedded[j]!;
    }
    const now = Date.now();
    const rows = items.map((item, i) => {
      const record: MemoryRecord = {
        id: item.id ?? uuidv7(),
        tenant_id: scope.tenant_id,
        user_id: item.user_id ?? scope.user_id ?? null,
        agent_id: item.agent_id ?? scope.agent_id ?? null,
        session_id: item.session_id ?? scope.session_id ?? null,
        text: item.text,
        metadata: item.metadata ?? {},
        tags: item.tags === undefined ? [] : [...new Set(item.tags)],
        importance: item.importance ?? 0.5,
        created_at: item.created_at ?? now,
        updated_at: item.updated_at ?? item.created_at ?? now,
        expires_at: item.expires_at ?? null,
      };
      return { record, vector: vectors[i]! };
    });
    const stored = await this.storage.insert(rows);
    this.#track(stored.map(({ key, record }, i) => ({ key, record, vector: rows[i]!.vector })));
    return stored.map((s) => s.record);
  }

  async get(tenantId: string, id: string): Promise<MemoryRecord | undefined> {
    const found = await this.storage.get(tenantId, id);
    if (found === undefined) return undefined;
    const expires = found.record.expires_at;
    return expires !== null && expires <= Date.now() ? undefined : found.record;
  }

  /** Changes a memory; a new text gets a new vector in the same transaction. */
  async update(
    tenantId: string,
    id: string,
    patch: MemoryPatch,
    signal?: AbortSignal,
  ): Promise<MemoryRecord | undefined> {
    checkPatch(patch, this.limits);
    const before = await this.storage.get(tenantId, id);
    if (before === undefined) return undefined;
    let vector: Float32Array | undefined;
    const textChanged = patch.text !== undefined && patch.text !== before.record.text;
    if (textChanged) {
      this.#requireEmbedder();
      [vector] = await this.#embedder.embedDocuments([patch.text!], signal);
    }
    const after = await this.storage.update(tenantId, id, patch, vector, Date.now());
    if (after === undefined) return undefined;
    this.#catalog.setExpiry(after.key, after.record.expires_at);
    if (vector !== undefined) {
      // Not yet in the index (added by another node, not caught up): `#track` counts it in.
      if (this.#index.has(after.key)) {
        this.#embedder.observe?.(before.record.text, -1);
        this.#embedder.observe?.(after.record.text, 1);
      }
      this.#track([{ key: after.key, record: after.record, vector }]);
    }
    return after.record;
  }

  /** Deletes a memory with its vector and full-text entry; false when there was none. */
  async delete(tenantId: string, id: string): Promise<boolean> {
    const before = await this.storage.get(tenantId, id);
    const key = await this.storage.delete(tenantId, id, Date.now());
    if (key === undefined) return false;
    this.#forget(key, before?.record.text);
    return true;
  }

  #forget(key: number, text: string | undefined): void {
    if (!this.#index.has(key)) return;
    this.#index.remove(key);
    this.#catalog.remove(key);
    this.#lexical.remove(key);
    if (text !== undefined) this.#embedder.observe?.(text, -1);
  }

  list(query: ListQuery): Promise<Page<MemoryRecord>> {
    return this.storage.list(query, Date.now());
  }

  history(tenantId: string, id: string): Promise<MemoryHistoryEntry[]> {
    return this.storage.history(tenantId, id);
  }

  /** Searches memories; see `SearchQuery`. */
  async search(query: SearchQuery, signal?: AbortSignal, parent?: Span): Promise<SearchResult> {
    const needsVectors = query.mode === 'semantic' || query.mode === 'hybrid' || query.vector !== undefined;
    if (needsVectors) this.#requireEmbedder();
    // Full-text and exact search read only storage; the indexes matter to the other modes.
    const indexed = query.mode !== 'fulltext' && query.mode !== 'exact';
    if (this.#shared && indexed && this.#mismatch === undefined) await this.#catchUp();
    return this.#search.run(query, {
      embedder: this.#mismatch === undefined ? this.#embedder : undefined,
      index: this.#index,
      catalog: this.#catalog,
      lexical: this.#lexical,
      signal,
      parent,
    });
  }

  /**
   * Applies other processes' changes to the index. Catch-ups run one at a time (two overlapping
   * ones could apply an older read last); a caller arriving while one runs waits for the next,
   * which starts after its arrival and so sees every write committed before it.
   */
  #catchUp(): Promise<void> {
    if (this.#nextCatchUp !== undefined) return this.#nextCatchUp;
    const next = this.#catchingUp.then(() => {
      this.#nextCatchUp = undefined;
      return this.#applyChanges();
    });
    this.#nextCatchUp = next;
    this.#catchingUp = next.catch(() => {});
    return next;
  }

  async #applyChanges(): Promise<void> {
    const changes = await this.storage.changesSince(this.#seq);
    // Bounded reads: a node back from a long pause may have many changes to apply.
    for (let from = 0; from < changes.keys.length; from += CATCH_UP_BATCH) {
      const keys = changes.keys.slice(from, from + CATCH_UP_BATCH);
      const [records, vectors] = await Promise.all([
        this.storage.byKeys(keys),
        this.storage.vectorsByKeys(keys),
      ]);
      const found: { key: number; record: MemoryRecord; vector: Float32Array }[] = [];
      for (const key of keys) {
        const record = records.get(key);
        const vector = vectors.get(key);
        // Another node's old text is unknown here, so the embedder's statistics skip it.
        if (record === undefined || vector === undefined) this.#forget(key, undefined);
        else found.push({ key, record, vector });
      }
      this.#track(found);
    }
    this.#seq = Math.max(this.#seq, changes.seq);
  }

  /** Removes expired memories now; how many. */
  async purgeExpired(): Promise<number> {
    const removed = await this.storage.purgeExpired(Date.now());
    for (const item of removed) this.#forget(item.key, item.text);
    return removed.length;
  }

  /** Purges expired memories every `intervalMs` in the background. */
  startSweeper(intervalMs: number, onError: (err: unknown) => void): void {
    this.#sweeper = setInterval(() => {
      this.purgeExpired().catch(onError);
    }, intervalMs);
    this.#sweeper.unref();
  }

  /**
   * Re-embeds every stored memory with `embedder` (batch by batch) and records it: the explicit
   * step that switching embedders requires. Returns how many memories were re-embedded.
   */
  async reindex(embedder: Embedder, onProgress?: (done: number) => void): Promise<number> {
    const index = new VectorIndex({ ...this.#indexOptions, dimensions: embedder.dimensions });
    const into: Indexes = { catalog: new ScopeCatalog(), lexical: new LexicalIndex(), index, embedder };
    let done = 0;
    for await (const batch of this.storage.vectors()) {
      const vectors = await embedder.embedDocuments(batch.map((item) => item.text));
      await this.storage.replaceVectors(batch.map((item, i) => ({ key: item.key, vector: vectors[i]! })));
      const records = await this.storage.byKeys(batch.map((item) => item.key));
      this.#track(
        batch.map((item, i) => ({ key: item.key, record: records.get(item.key), vector: vectors[i]! })),
        into,
      );
      done += batch.length;
      onProgress?.(done);
    }
    await this.storage.setEmbedder({ name: embedder.name, dimensions: embedder.dimensions });
    index.ensureHnsw();
    this.#embedder = embedder;
    this.#index = index;
    this.#catalog = into.catalog;
    this.#lexical = into.lexical;
    this.#mismatch = undefined;
    return done;
  }

  /** Saves the HNSW index (when there is one) and closes storage. */
  async close(): Promise<void> {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    if (this.#indexPath !== undefined && this.#mismatch === undefined) {
      const { seq } = await this.storage.changesSince(Number.MAX_SAFE_INTEGER);
      this.#index.save(this.#indexPath, {
        seq,
        embedder: this.#embedder.name,
        dimensions: this.#embedder.dimensions,
      });
    }
    await this.storage.close();
  }
}
