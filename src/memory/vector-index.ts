import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import usearch, { type Index, type Matches, MetricKind, ScalarKind } from 'usearch';
import { type Selection, selectionSize } from './scope-catalog.js';
import { Arena, writeUnit } from './vector-arena.js';

/** A vector match: the memory's row key and its cosine similarity to the query. */
export interface VectorMatch {
  key: number;
  score: number;
}

export interface VectorIndexOptions {
  dimensions: number;
  /** Filtered sets up to this size are searched exactly (default 20,000). */
  exactThreshold?: number;
  /** Build the HNSW index once this many vectors are stored (default 50,000; 0 = always). */
  hnswThreshold?: number;
  /**
   * Quantization of the HNSW graph walk: `f32`, `f16` or `i8` (default `i8`). Results are
   * re-scored against the stored f32 vectors whatever the choice.
   */
  quantization?: 'f32' | 'f16' | 'i8';
  connectivity?: number;
  expansionAdd?: number;
  expansionSearch?: number;
}

/** What the persisted HNSW file reflects: history up to `seq`, vectors of `embedder`. */
interface IndexStamp {
  seq: number;
  embedder: string;
  dimensions: number;
  quantization: string;
}

const QUANTIZATION = { f32: ScalarKind.F32, f16: ScalarKind.F16, i8: ScalarKind.I8 } as const;

/**
 * The vector as an array starting at its buffer's start: usearch's native binding reads typed
 * arrays from the start of their buffer, ignoring a view's offset, so offset views are copied.
 */
function standalone(vector: Float32Array): Float32Array {
  return vector.byteOffset === 0 ? vector : vector.slice();
}

function unit(vector: Float32Array): Float32Array {
  const out = new Float32Array(vector.length);
  writeUnit(out, 0, vector);
  return out;
}

/** A gathered subset is searched instead of its whole partition when smaller than this share. */
const GATHER_SHARE = 0.5;
/** HNSW candidates re-scored exactly per result wanted (discuss/0201: the i8 sweep). */
const RERANK = 4;

/**
 * Every stored vector, unit length, in one dense matrix per partition (a tenant's user), plus an
 * HNSW index (usearch) over them once the set is large. Cosine similarity is the inner product
 * of unit vectors, so exact search runs usearch's SIMD inner product straight over a partition's
 * matrix: a user's memories need no gathering. A search over a selection picks its strategy:
 * exact over the selected partitions (skipping excluded keys by asking for that many more) or
 * over gathered rows of a small key set, or the HNSW index for a large selection, asked for more
 * neighbours until enough pass the filter (and exact search if it cannot give enough). So a
 * filter is always applied before the top-k cut.
 */
export class VectorIndex {
  readonly dimensions: number;
  readonly #options: Required<Omit<VectorIndexOptions, 'dimensions'>>;
  readonly #arenas = new Map<string, Arena>();
  /** The arena of each key. */
  readonly #where = new Map<number, Arena>();
  #scratch = new Float32Array(0);
  #hnsw: Index | undefined;
  /** A loaded HNSW index waiting for the matrix to fill before `resync` attaches it. */
  #loaded: Index | undefined;

  constructor(options: VectorIndexOptions) {
    this.dimensions = options.dimensions;
    this.#options = {
      exactThreshold: options.exactThreshold ?? 20_000,
      hnswThreshold: options.hnswThreshold ?? 50_000,
      quantization: options.quantization ?? 'i8',
      connectivity: options.connectivity ?? 16,
      expansionAdd: options.expansionAdd ?? 128,
      expansionSearch: options.expansionSearch ?? 128,
    };
  }

  get size(): number {
    return this.#where.size;
  }

  /** Adds or replaces a vector; `partition` groups vectors searched together (default: one group). */
  upsert(key: number, vector: Float32Array, partition = ''): void {
    this.upsertMany([{ key, vector, partition }]);
  }

  /** Adds or replaces vectors; the HNSW index (if built) takes them in one multi-threaded batch. */
  upsertMany(items: readonly { key: number; vector: Float32Array; partition: string }[]): void {
    const hnsw = this.#hnsw;
    for (const { key, vector, partition } of items) {
      if (vector.length !== this.dimensions)
        throw new RangeError(`vector has ${vector.length} dimensions, the index ${this.dimensions}`);
      this.#put(key, vector, partition);
    }
    if (hnsw !== undefined) {
      const d = this.dimensions;
      const keys = new BigUint64Array(items.length);
      const matrix = new Float32Array(items.length * d);
      items.forEach(({ key }, i) => {
        keys[i] = BigInt(key);
        matrix.set(this.vector(key)!, i * d);
      });
      hnsw.add(keys, matrix, 0);
    } else if (this.#loaded === undefined && this.size >= this.#options.hnswThreshold) this.#buildHnsw();
  }

  #put(key: number, vector: Float32Array, partition: string): void {
    let arena = this.#where.get(key);
    if (arena !== undefined && this.#arenas.get(partition) !== arena) {
      arena.delete(key);
      this.#where.delete(key);
      this.#dropIfEmpty(arena);
      arena = undefined;
    }
    if (arena === undefined) {
      arena = this.#arenas.get(partition);
      if (arena === undefined) {
        arena = new Arena(this.dimensions);
        this.#arenas.set(partition, arena);
      }
      this.#where.set(key, arena);
    }
    // A replaced vector leaves the HNSW index first (the batch adds it back).
    if (this.#hnsw?.contains(BigInt(key)) === true) this.#hnsw.remove(BigInt(key));
    arena.put(key, vector);
  }

  remove(key: number): void {
    const arena = this.#where.get(key);
    if (arena === undefined) return;
    arena.delete(key);
    this.#where.delete(key);
    this.#dropIfEmpty(arena);
    this.#hnsw?.remove(BigInt(key));
  }

  #dropIfEmpty(arena: Arena): void {
    if (arena.size > 0) return;
    for (const [partition, candidate] of this.#arenas)
      if (candidate === arena) this.#arenas.delete(partition);
  }

  has(key: number): boolean {
    return this.#where.has(key);
  }

  /** The stored (unit-length) vector of a key (a view: copy it to keep it). */
  vector(key: number): Float32Array | undefined {
    return this.#where.get(key)?.row(key);
  }

  /** The strategy a search over `candidates` vectors would use. */
  strategy(candidates: number): 'exact' | 'hnsw' {
    return this.#hnsw !== undefined && candidates > this.#options.exactThreshold ? 'hnsw' : 'exact';
  }

  /**
   * The `k` nearest of the selected vectors (all when undefined), best first, ties by key, with
   * their cosine similarity. Exact unless the selection is large and the HNSW index exists.
   */
  search(query: Float32Array, k: number, selection: Selection | undefined): VectorMatch[] {
    const count = selection === undefined ? this.size : selectionSize(selection);
    if (count === 0 || k <= 0) return [];
    const q = unit(query);
    if (this.strategy(count) === 'hnsw') {
      const approximate = this.#searchHnsw(q, k, selection, count);
      if (approximate !== undefined) return approximate;
    }
    if (selection === undefined) return this.#exactPartitions(q, k, [...this.#arenas.values()], undefined);
    if (selection.kind === 'partitions') {
      const arenas: Arena[] = [];
      for (const partition of selection.partitions) {
        const arena = this.#arenas.get(partition);
        if (arena !== undefined) arenas.push(arena);
      }
      return this.#exactPartitions(q, k, arenas, selection.exclude.size > 0 ? selection.exclude : undefined);
    }
    return this.#exactKeys(q, k, selection.keys);
  }

  /** Exact search over whole arenas, each asked for as many more as it holds excluded keys. */
  #exactPartitions(
    query: Float32Array,
    k: number,
    arenas: readonly Arena[],
    exclude: ReadonlySet<number> | undefined,
  ): VectorMatch[] {
    const out: VectorMatch[] = [];
    for (const arena of arenas) {
      let skipped = 0;
      if (exclude !== undefined) for (const key of exclude) if (arena.slots.has(key)) skipped++;
      this.#exactArena(query, k + skipped, arena, exclude, out);
    }
    return sortMatches(out).slice(0, k);
  }

  /**
   * Exact search over a list of keys: per arena, the whole arena (skipping keys not listed) when
   * most of it is listed, else the listed rows gathered into one matrix.
   */
  #exactKeys(query: Float32Array, k: number, keys: readonly number[]): VectorMatch[] {
    const byArena = new Map<Arena, number[]>();
    for (const key of keys) {
      const arena = this.#where.get(key);
      if (arena === undefined) continue;
      const listed = byArena.get(arena);
      if (listed === undefined) byArena.set(arena, [key]);
      else listed.push(key);
    }
    const out: VectorMatch[] = [];
    const gathered: number[] = [];
    const gatheredFrom: Arena[] = [];
    for (const [arena, listed] of byArena) {
      if (listed.length >= arena.size * GATHER_SHARE) {
        const unlisted = new Set<number>(arena.keys);
        for (const key of listed) unlisted.delete(key);
        this.#exactArena(query, k + unlisted.size, arena, unlisted, out);
      } else {
        for (const key of listed) {
          gathered.push(key);
          gatheredFrom.push(arena);
        }
      }
    }
    if (gathered.length > 0) {
      const d = this.dimensions;
      if (this.#scratch.length < gathered.length * d) this.#scratch = new Float32Array(gathered.length * d);
      for (let row = 0; row < gathered.length; row++) {
        this.#scratch.set(gatheredFrom[row]!.row(gathered[row]!)!, row * d);
      }
      const matches = usearch.exactSearch(
        this.#scratch.subarray(0, gathered.length * d),
        query,
        d,
        Math.min(k, gathered.length),
        MetricKind.IP,
        1,
      ) as Matches;
      for (let i = 0; i < matches.keys.length; i++)
        out.push({ key: gathered[Number(matches.keys[i])]!, score: 1 - matches.distances[i]! });
    }
    return sortMatches(out).slice(0, k);
  }

  /** Appends the `count` nearest rows of `arena` to `out`, less the keys in `skip`. */
  #exactArena(
    query: Float32Array,
    count: number,
    arena: Arena,
    skip: ReadonlySet<number> | undefined,
    out: VectorMatch[],
  ): void {
    const d = this.dimensions;
    for (const { start, matrix } of arena.matrices()) {
      const rows = matrix.length / d;
      const matches = usearch.exactSearch(
        matrix,
        query,
        d,
        Math.min(count, rows),
        MetricKind.IP,
        1,
      ) as Matches;
      for (let i = 0; i < matches.keys.length; i++) {
        const key = arena.keys[start + Number(matches.keys[i])]!;
        if (skip?.has(key) !== true) out.push({ key, score: 1 - matches.distances[i]! });
      }
    }
  }

  /**
   * HNSW with growing over-fetch until `k` pass the filter; undefined to fall back to exact. The
   * first `RERANK × k` candidates that pass are re-scored exactly against the stored f32 vectors:
   * the graph walk (on quantized vectors) only has to bring the true neighbours into that window,
   * not order them, so an `i8` index reaches the recall of `f16` at a lower breadth.
   */
  #searchHnsw(
    query: Float32Array,
    k: number,
    selection: Selection | undefined,
    count: number,
  ): VectorMatch[] | undefined {
    const hnsw = this.#hnsw!;
    const total = this.size;
    const allowed = selection === undefined ? undefined : this.#predicate(selection);
    const share = Math.max(count / total, 1e-6);
    const window = k * RERANK;
    // Unfiltered, the window is all it needs; `expansion_search` still sets the walk's breadth.
    let fetch = Math.min(total, allowed === undefined ? window : Math.ceil((window / share) * 1.5) + 16);
    for (;;) {
      const matches = hnsw.search(query, fetch, 1) as Matches;
      const out: VectorMatch[] = [];
      for (let i = 0; i < matches.keys.length && out.length < window; i++) {
        const key = Number(matches.keys[i]);
        const arena = this.#where.get(key);
        if (arena !== undefined && (allowed === undefined || allowed(key)))
          out.push({ key, score: dot(query, arena.row(key)!) });
      }
      if (out.length >= k || (allowed === undefined && matches.keys.length >= Math.min(k, total)))
        return sortMatches(out).slice(0, k);
      if (fetch >= total || fetch > 8 * this.#options.exactThreshold) return undefined;
      fetch = Math.min(total, fetch * 4);
    }
  }

  #predicate(selection: Selection): (key: number) => boolean {
    if (selection.kind === 'keys') {
      const allowed = new Set(selection.keys);
      return (key) => allowed.has(key);
    }
    const arenas = new Set<Arena>();
    for (const partition of selection.partitions) {
      const arena = this.#arenas.get(partition);
      if (arena !== undefined) arenas.add(arena);
    }
    const exclude = selection.exclude;
    return (key) => {
      const arena = this.#where.get(key);
      return arena !== undefined && arenas.has(arena) && !exclude.has(key);
    };
  }

  #buildHnsw(): void {
    const hnsw = this.#newHnsw();
    for (const arena of this.#arenas.values()) {
      for (const { start, matrix } of arena.matrices()) {
        const keys = new BigUint64Array(matrix.length / this.dimensions);
        for (let i = 0; i < keys.length; i++) keys[i] = BigInt(arena.keys[start + i]!);
        hnsw.add(keys, matrix, 0);
      }
    }
    this.#hnsw = hnsw;
  }

  #newHnsw(): Index {
    return new usearch.Index({
      dimensions: this.dimensions,
      metric: MetricKind.Cos,
      quantization: QUANTIZATION[this.#options.quantization],
      connectivity: this.#options.connectivity,
      expansion_add: this.#options.expansionAdd,
      expansion_search: this.#options.expansionSearch,
      multi: false,
    });
  }

  /**
   * Saves the HNSW index (if any) beside `stamp`, so the next start loads it and replays only the
   * changes after `stamp.seq` instead of rebuilding.
   */
  save(path: string, stamp: Omit<IndexStamp, 'quantization'>): void {
    if (this.#hnsw === undefined) {
      rmSync(path, { force: true });
      rmSync(`${path}.json`, { force: true });
      return;
    }
    this.#hnsw.save(`${path}.tmp`);
    renameSync(`${path}.tmp`, path);
    const full: IndexStamp = { ...stamp, quantization: this.#options.quantization };
    writeFileSync(`${path}.json.tmp`, JSON.stringify(full));
    renameSync(`${path}.json.tmp`, `${path}.json`);
  }

  /**
   * Loads a saved HNSW index whose stamp matches; returns the history sequence it reflects, or
   * undefined when there is none to load (the caller rebuilds).
   */
  load(path: string, embedder: string): number | undefined {
    if (!existsSync(path) || !existsSync(`${path}.json`)) return undefined;
    try {
      const stamp = JSON.parse(readFileSync(`${path}.json`, 'utf8')) as IndexStamp;
      if (
        stamp.embedder !== embedder ||
        stamp.dimensions !== this.dimensions ||
        stamp.quantization !== this.#options.quantization
      )
        return undefined;
      const hnsw = this.#newHnsw();
      hnsw.load(path);
      this.#loaded = hnsw;
      return stamp.seq;
    } catch {
      return undefined;
    }
  }

  /** Attaches a loaded HNSW index, reconciled with the matrix for keys changed since its save. */
  resync(keys: Iterable<number>): void {
    const hnsw = this.#loaded;
    if (hnsw === undefined) return;
    this.#loaded = undefined;
    this.#hnsw = hnsw;
    for (const key of keys) {
      const big = BigInt(key);
      if (hnsw.contains(big)) hnsw.remove(big);
      const vector = this.vector(key);
      if (vector !== undefined) hnsw.add(big, standalone(vector));
    }
    if (hnsw.size() !== this.size) this.#buildHnsw();
  }

  /** Builds the HNSW index now if the set has reached its threshold (or regardless, with `force`). */
  ensureHnsw(force = false): void {
    if (this.#hnsw === undefined && (force || this.size >= this.#options.hnswThreshold)) this.#buildHnsw();
  }
}

/** Inner product of `query` and `row`: cosine similarity of unit vectors. */
function dot(query: Float32Array, row: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < query.length; i++) sum += query[i]! * row[i]!;
  return sum;
}

function sortMatches(matches: VectorMatch[]): VectorMatch[] {
  return matches.sort((a, b) => b.score - a.score || a.key - b.key);
}
