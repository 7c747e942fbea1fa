import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import usearch, { type Index, type Matches, MetricKind, ScalarKind } from 'usearch';

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
  /** Quantization of the HNSW index: `f32`, `f16` or `i8` (default `f16`). */
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

/**
 * Every stored vector, in one growable matrix (row = slot), plus an HNSW index (usearch) over
 * them once the set is large. A search over a filtered set picks its strategy: exact SIMD search
 * over the gathered rows of a small set, or the HNSW index for a large one, asked for more
 * neighbours until enough pass the filter (and exact search if it cannot give enough). So a
 * filter is always applied before the top-k cut.
 */
export class VectorIndex {
  readonly dimensions: number;
  readonly #options: Required<Omit<VectorIndexOptions, 'dimensions'>>;
  #data: Float32Array;
  #keys: number[] = [];
  readonly #slots = new Map<number, number>();
  #scratch = new Float32Array(0);
  #hnsw: Index | undefined;
  /** A loaded HNSW index waiting for the matrix to fill before `resync` attaches it. */
  #loaded: Index | undefined;

  constructor(options: VectorIndexOptions) {
    this.dimensions = options.dimensions;
    this.#options = {
      exactThreshold: options.exactThreshold ?? 20_000,
      hnswThreshold: options.hnswThreshold ?? 50_000,
      quantization: options.quantization ?? 'f16',
      connectivity: options.connectivity ?? 16,
      expansionAdd: options.expansionAdd ?? 128,
      expansionSearch: options.expansionSearch ?? 64,
    };
    this.#data = new Float32Array(1024 * this.dimensions);
  }

  get size(): number {
    return this.#keys.length;
  }

  /** Adds or replaces vectors. */
  upsert(key: number, vector: Float32Array): void {
    if (vector.length !== this.dimensions)
      throw new RangeError(`vector has ${vector.length} dimensions, the index ${this.dimensions}`);
    let slot = this.#slots.get(key);
    if (slot === undefined) {
      slot = this.#keys.length;
      if ((slot + 1) * this.dimensions > this.#data.length) {
        const grown = new Float32Array(this.#data.length * 2);
        grown.set(this.#data);
        this.#data = grown;
      }
      this.#keys.push(key);
      this.#slots.set(key, slot);
    } else if (this.#hnsw !== undefined) {
      this.#hnsw.remove(BigInt(key));
    }
    this.#data.set(vector, slot * this.dimensions);
    if (this.#hnsw !== undefined) this.#hnsw.add(BigInt(key), standalone(vector));
    else if (this.#loaded === undefined && this.size >= this.#options.hnswThreshold) this.#buildHnsw();
  }

  remove(key: number): void {
    const slot = this.#slots.get(key);
    if (slot === undefined) return;
    const last = this.#keys.length - 1;
    const d = this.dimensions;
    if (slot !== last) {
      // The last row fills the hole: the matrix stays dense.
      this.#data.copyWithin(slot * d, last * d, last * d + d);
      const moved = this.#keys[last]!;
      this.#keys[slot] = moved;
      this.#slots.set(moved, slot);
    }
    this.#keys.pop();
    this.#slots.delete(key);
    this.#hnsw?.remove(BigInt(key));
  }

  has(key: number): boolean {
    return this.#slots.has(key);
  }

  /** The stored vector of a key (a view: copy it to keep it). */
  vector(key: number): Float32Array | undefined {
    const slot = this.#slots.get(key);
    if (slot === undefined) return undefined;
    return this.#data.subarray(slot * this.dimensions, (slot + 1) * this.dimensions);
  }

  /** The strategy a search over `candidates` vectors would use. */
  strategy(candidates: number): 'exact' | 'hnsw' {
    return this.#hnsw !== undefined && candidates > this.#options.exactThreshold ? 'hnsw' : 'exact';
  }

  /**
   * The `k` nearest of `candidates` (row keys; all vectors when undefined), best first, ties by
   * key. Exact unless the set is large and the HNSW index exists.
   */
  search(query: Float32Array, k: number, candidates: readonly number[] | undefined): VectorMatch[] {
    const count = candidates === undefined ? this.size : candidates.length;
    if (count === 0 || k <= 0) return [];
    if (this.strategy(count) === 'hnsw') {
      const approximate = this.#searchHnsw(query, k, candidates);
      if (approximate !== undefined) return approximate;
    }
    return this.#exact(query, k, candidates);
  }

  #exact(query: Float32Array, k: number, candidates: readonly number[] | undefined): VectorMatch[] {
    const d = this.dimensions;
    let dataset: Float32Array;
    let keys: readonly number[];
    if (candidates === undefined) {
      dataset = this.#data.subarray(0, this.size * d);
      keys = this.#keys;
    } else {
      const present: number[] = [];
      if (this.#scratch.length < candidates.length * d)
        this.#scratch = new Float32Array(candidates.length * d);
      let row = 0;
      for (const key of candidates) {
        const slot = this.#slots.get(key);
        if (slot === undefined) continue;
        this.#scratch.set(this.#data.subarray(slot * d, slot * d + d), row * d);
        present.push(key);
        row++;
      }
      if (row === 0) return [];
      dataset = this.#scratch.subarray(0, row * d);
      keys = present;
    }
    const rows = dataset.length / d;
    const matches = usearch.exactSearch(
      standalone(dataset),
      standalone(query),
      d,
      Math.min(k, rows),
      MetricKind.Cos,
      1,
    ) as Matches;
    const out: VectorMatch[] = [];
    for (let i = 0; i < matches.keys.length; i++) {
      out.push({ key: keys[Number(matches.keys[i])]!, score: 1 - matches.distances[i]! });
    }
    return sortMatches(out);
  }

  /** HNSW with growing over-fetch until `k` pass the filter; undefined to fall back to exact. */
  #searchHnsw(
    query: Float32Array,
    k: number,
    candidates: readonly number[] | undefined,
  ): VectorMatch[] | undefined {
    const hnsw = this.#hnsw!;
    const total = this.size;
    const allowed = candidates === undefined ? undefined : new Set(candidates);
    const share = candidates === undefined ? 1 : Math.max(candidates.length / total, 1e-6);
    let fetch = Math.min(total, Math.ceil((k / share) * 1.5) + 16);
    for (;;) {
      const matches = hnsw.search(standalone(query), fetch, 1) as Matches;
      const out: VectorMatch[] = [];
      for (let i = 0; i < matches.keys.length && out.length < k; i++) {
        const key = Number(matches.keys[i]);
        if (allowed === undefined || allowed.has(key)) out.push({ key, score: 1 - matches.distances[i]! });
      }
      if (out.length >= k || (allowed === undefined && matches.keys.length >= Math.min(k, total)))
        return sortMatches(out);
      if (fetch >= total || fetch > 8 * this.#options.exactThreshold) return undefined;
      fetch = Math.min(total, fetch * 4);
    }
  }

  #buildHnsw(): void {
    const hnsw = this.#newHnsw();
    if (this.size > 0) {
      const keys = new BigUint64Array(this.size);
      for (let i = 0; i < this.size; i++) keys[i] = BigInt(this.#keys[i]!);
      hnsw.add(keys, standalone(this.#data.subarray(0, this.size * this.dimensions)), 0);
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
  save(path: string, stamp: IndexStamp): void {
    if (this.#hnsw === undefined) {
      rmSync(path, { force: true });
      rmSync(`${path}.json`, { force: true });
      return;
    }
    this.#hnsw.save(`${path}.tmp`);
    renameSync(`${path}.tmp`, path);
    writeFileSync(`${path}.json.tmp`, JSON.stringify(stamp));
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

function sortMatches(matches: VectorMatch[]): VectorMatch[] {
  return matches.sort((a, b) => b.score - a.score || a.key - b.key);
}
