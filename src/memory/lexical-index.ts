import type { Selection } from './scope-catalog.js';
import { terms } from './terms.js';

/** A lexical match: a memory's row key and its BM25 score (higher is better). */
export interface LexicalMatch {
  key: number;
  score: number;
}

export interface LexicalIndexOptions {
  /** BM25 term-frequency saturation (default 1.2). */
  k1?: number;
  /** BM25 length normalisation (default 0.75). */
  b?: number;
}

interface Document {
  tenant: string;
  partition: Partition;
  /** Its slot in the partition (it changes when another document's removal moves it). */
  slot: number;
}

interface TenantStats {
  documents: number;
  length: number;
  /** Documents containing each term. */
  df: Map<string, number>;
  partitions: Set<Partition>;
}

/**
 * A document's distinct terms with their frequencies (parallel arrays, first occurrence first),
 * and where each term's posting of the document sits in that term's postings.
 */
interface TermCounts {
  terms: string[];
  tfs: number[];
  positions: number[];
}

/** Up to this many words, a linear scan counts them faster than building a `Map`. */
const LINEAR_COUNT = 24;

function countTerms(words: readonly string[]): TermCounts {
  const terms: string[] = [];
  const tfs: number[] = [];
  if (words.length <= LINEAR_COUNT) {
    for (const word of words) {
      const at = terms.indexOf(word);
      if (at < 0) {
        terms.push(word);
        tfs.push(1);
      } else tfs[at]!++;
    }
    return { terms, tfs, positions: [] };
  }
  const slots = new Map<string, number>();
  for (const word of words) {
    const at = slots.get(word);
    if (at === undefined) {
      slots.set(word, terms.length);
      terms.push(word);
      tfs.push(1);
    } else tfs[at]!++;
  }
  return { terms, tfs, positions: [] };
}

/**
 * One partition's documents in dense slots, and its postings: per term, the (slot, term
 * frequency) pairs of the documents holding it, flat in one array. Each document keeps where its
 * pairs sit, so removing one swaps the list's last pair into its place without searching. Flat
 * arrays cost a fraction of a `Map` per term (most terms are rare: a `Map` each was a third of an
 * add's indexing time) and scan faster. A document's slot is kept by the index with the
 * document's other facts (one map entry per memory, not two).
 */
class Partition {
  readonly keys: number[] = [];
  readonly lengths: number[] = [];
  readonly termsOf: TermCounts[] = [];
  readonly postings = new Map<string, number[]>();

  get size(): number {
    return this.keys.length;
  }

  /** Adds a document; returns its slot. */
  add(key: number, counts: TermCounts, length: number): number {
    const slot = this.keys.length;
    this.keys.push(key);
    this.lengths.push(length);
    this.termsOf.push(counts);
    const { terms, tfs, positions } = counts;
    for (let i = 0; i < terms.length; i++) {
      const term = terms[i]!;
      const list = this.postings.get(term);
      if (list === undefined) {
        positions[i] = 0;
        this.postings.set(term, [slot, tfs[i]!]);
      } else {
        positions[i] = list.length;
        list.push(slot, tfs[i]!);
      }
    }
    return slot;
  }

  /**
   * Removes the document in `slot`; the last slot's document moves into the hole (the key now in
   * `slot`, when `slot` is still below `size`). Returns the removed document's terms.
   */
  remove(slot: number): TermCounts {
    const counts = this.termsOf[slot]!;
    for (let i = 0; i < counts.terms.length; i++) {
      const term = counts.terms[i]!;
      const list = this.postings.get(term)!;
      const at = counts.positions[i]!;
      const end = list.length - 2;
      if (at !== end) {
        // The list's last pair fills the hole; its document learns where it went.
        const other = list[end]!;
        list[at] = other;
        list[at + 1] = list[end + 1]!;
        const moved = this.termsOf[other]!;
        moved.positions[moved.terms.indexOf(term)] = at;
      }
      list.length = end;
      if (end === 0) this.postings.delete(term);
    }
    const last = this.keys.length - 1;
    if (slot !== last) {
      const moved = this.termsOf[last]!;
      for (let i = 0; i < moved.terms.length; i++)
        this.postings.get(moved.terms[i]!)![moved.positions[i]!] = slot;
      this.keys[slot] = this.keys[last]!;
      this.lengths[slot] = this.lengths[last]!;
      this.termsOf[slot] = moved;
    }
    this.keys.pop();
    this.lengths.pop();
    this.termsOf.pop();
    return counts;
  }
}

/**
 * BM25 over memory texts, in memory, with postings kept per partition (a tenant's user) so a
 * scoped query reads only that scope's postings. Term statistics (document frequency, average
 * length) are per tenant: one tenant's data never moves another's scores. Terms are Porter stems
 * of content words (see `terms`).
 */
export class LexicalIndex {
  readonly #k1: number;
  readonly #b: number;
  readonly #documents = new Map<number, Document>();
  readonly #partitions = new Map<string, Partition>();
  readonly #tenants = new Map<string, TenantStats>();
  /** Score accumulators by slot, reused across searches (always left zeroed). */
  #scores = new Float64Array(1024);

  constructor(options: LexicalIndexOptions = {}) {
    this.#k1 = options.k1 ?? 1.2;
    this.#b = options.b ?? 0.75;
  }

  get size(): number {
    return this.#documents.size;
  }

  /** Indexes a memory's text (replacing what its key had). */
  add(key: number, tenant: string, partitionId: string, text: string): void {
    this.remove(key);
    const words = terms(text);
    const counts = countTerms(words);
    let stats = this.#tenants.get(tenant);
    if (stats === undefined) {
      stats = { documents: 0, length: 0, df: new Map(), partitions: new Set() };
      this.#tenants.set(tenant, stats);
    }
    let partition = this.#partitions.get(partitionId);
    if (partition === undefined) {
      partition = new Partition();
      this.#partitions.set(partitionId, partition);
      stats.partitions.add(partition);
    }
    this.#documents.set(key, { tenant, partition, slot: partition.add(key, counts, words.length) });
    stats.documents++;
    stats.length += words.length;
    for (const term of counts.terms) stats.df.set(term, (stats.df.get(term) ?? 0) + 1);
  }

  remove(key: number): void {
    const document = this.#documents.get(key);
    if (document === undefined) return;
    this.#documents.delete(key);
    const stats = this.#tenants.get(document.tenant)!;
    const { partition, slot } = document;
    stats.documents--;
    stats.length -= partition.lengths[slot]!;
    const removed = partition.remove(slot);
    if (slot < partition.size) this.#documents.get(partition.keys[slot]!)!.slot = slot;
    for (const term of removed.terms) {
      const df = stats.df.get(term)! - 1;
      if (df === 0) stats.df.delete(term);
      else stats.df.set(term, df);
    }
    if (partition.size === 0) {
      for (const [id, candidate] of this.#partitions)
        if (candidate === partition) this.#partitions.delete(id);
      stats.partitions.delete(partition);
    }
    if (stats.documents === 0) this.#tenants.delete(document.tenant);
  }

  /** The `limit` best BM25 matches of `text` among the selected memories, best first, ties by key. */
  search(tenant: string, text: string, limit: number, selection: Selection): LexicalMatch[] {
    const stats = this.#tenants.get(tenant);
    if (stats === undefined || limit <= 0) return [];
    let partitions: Iterable<Partition | undefined>;
    let exclude: ReadonlySet<number> | undefined;
    let allowed: Set<number> | undefined;
    if (selection.kind === 'partitions') {
      partitions = selection.partitions.map((id) => this.#partitions.get(id));
      exclude = selection.exclude.size > 0 ? selection.exclude : undefined;
    } else {
      allowed = new Set(selection.keys);
      partitions = stats.partitions;
    }
    const weights: [string, number][] = [];
    for (const term of new Set(terms(text))) {
      const df = stats.df.get(term);
      if (df !== undefined) weights.push([term, Math.log(1 + (stats.documents - df + 0.5) / (df + 0.5))]);
    }
    const k1 = this.#k1;
    const avgLength = stats.length / stats.documents;
    const lengthShare = avgLength > 0 ? this.#b / avgLength : 0;
    const base = 1 - this.#b;
    const keys: number[] = [];
    const values: number[] = [];
    for (const partition of partitions) {
      if (partition === undefined) continue;
      if (this.#scores.length < partition.size) this.#scores = new Float64Array(partition.size * 2);
      const scores = this.#scores;
      const touched: number[] = [];
      for (const [term, idf] of weights) {
        const list = partition.postings.get(term);
        if (list === undefined) continue;
        const lengths = partition.lengths;
        for (let i = 0; i < list.length; i += 2) {
          const slot = list[i]!;
          const tf = list[i + 1]!;
          if (scores[slot] === 0) touched.push(slot);
          scores[slot]! += (idf * tf * (k1 + 1)) / (tf + k1 * (base + lengthShare * lengths[slot]!));
        }
      }
      for (const slot of touched) {
        const key = partition.keys[slot]!;
        const score = scores[slot]!;
        scores[slot] = 0;
        if (exclude?.has(key) || (allowed !== undefined && !allowed.has(key))) continue;
        keys.push(key);
        values.push(score);
      }
    }
    return best(keys, values, limit);
  }
}

/** The `limit` highest-scoring of parallel `keys` and `values`, best first, ties by key. */
export function best(keys: readonly number[], values: readonly number[], limit: number): LexicalMatch[] {
  // Many matches: only those at or above the limit-th best score (found by selection) are sorted.
  const cut =
    values.length > limit * 4 ? kthLargest(Float64Array.from(values), limit) : Number.NEGATIVE_INFINITY;
  const out: LexicalMatch[] = [];
  for (let i = 0; i < keys.length; i++) if (values[i]! >= cut) out.push({ key: keys[i]!, score: values[i]! });
  return out.sort((a, b) => b.score - a.score || a.key - b.key).slice(0, limit);
}

/** The k-th largest value (1-based), by quickselect; reorders `values`. */
function kthLargest(values: Float64Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = values[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i]! > pivot) i++;
      while (values[j]! < pivot) j--;
      if (i <= j) {
        const t = values[i]!;
        values[i] = values[j]!;
        values[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return values[target]!;
}
