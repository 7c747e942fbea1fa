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
  partition: string;
  length: number;
  terms: Map<string, number>;
}

interface TenantStats {
  documents: number;
  length: number;
  /** Documents containing each term. */
  df: Map<string, number>;
  partitions: Set<string>;
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
  /** partition → term → key → term frequency. */
  readonly #postings = new Map<string, Map<string, Map<number, number>>>();
  readonly #tenants = new Map<string, TenantStats>();

  constructor(options: LexicalIndexOptions = {}) {
    this.#k1 = options.k1 ?? 1.2;
    this.#b = options.b ?? 0.75;
  }

  get size(): number {
    return this.#documents.size;
  }

  /** Indexes a memory's text (replacing what its key had). */
  add(key: number, tenant: string, partition: string, text: string): void {
    this.remove(key);
    const counts = new Map<string, number>();
    const words = terms(text);
    for (const term of words) counts.set(term, (counts.get(term) ?? 0) + 1);
    this.#documents.set(key, { tenant, partition, length: words.length, terms: counts });
    let stats = this.#tenants.get(tenant);
    if (stats === undefined) {
      stats = { documents: 0, length: 0, df: new Map(), partitions: new Set() };
      this.#tenants.set(tenant, stats);
    }
    stats.documents++;
    stats.length += words.length;
    stats.partitions.add(partition);
    let postings = this.#postings.get(partition);
    if (postings === undefined) {
      postings = new Map();
      this.#postings.set(partition, postings);
    }
    for (const [term, tf] of counts) {
      stats.df.set(term, (stats.df.get(term) ?? 0) + 1);
      let list = postings.get(term);
      if (list === undefined) {
        list = new Map();
        postings.set(term, list);
      }
      list.set(key, tf);
    }
  }

  remove(key: number): void {
    const document = this.#documents.get(key);
    if (document === undefined) return;
    this.#documents.delete(key);
    const stats = this.#tenants.get(document.tenant)!;
    stats.documents--;
    stats.length -= document.length;
    const postings = this.#postings.get(document.partition)!;
    for (const term of document.terms.keys()) {
      const df = stats.df.get(term)! - 1;
      if (df === 0) stats.df.delete(term);
      else stats.df.set(term, df);
      const list = postings.get(term)!;
      list.delete(key);
      if (list.size === 0) postings.delete(term);
    }
    if (postings.size === 0) {
      this.#postings.delete(document.partition);
      stats.partitions.delete(document.partition);
    }
    if (stats.documents === 0) this.#tenants.delete(document.tenant);
  }

  /** The `limit` best BM25 matches of `text` among the selected memories, best first, ties by key. */
  search(tenant: string, text: string, limit: number, selection: Selection): LexicalMatch[] {
    const stats = this.#tenants.get(tenant);
    if (stats === undefined || limit <= 0) return [];
    let partitions: Iterable<string>;
    let exclude: ReadonlySet<number> | undefined;
    let allowed: Set<number> | undefined;
    if (selection.kind === 'partitions') {
      partitions = selection.partitions;
      exclude = selection.exclude.size > 0 ? selection.exclude : undefined;
    } else {
      allowed = new Set(selection.keys);
      partitions = stats.partitions;
    }
    const k1 = this.#k1;
    const avgLength = stats.length / stats.documents;
    const lengthShare = avgLength > 0 ? this.#b / avgLength : 0;
    const base = 1 - this.#b;
    const scores = new Map<number, number>();
    for (const term of new Set(terms(text))) {
      const df = stats.df.get(term);
      if (df === undefined) continue;
      const idf = Math.log(1 + (stats.documents - df + 0.5) / (df + 0.5));
      for (const partition of partitions) {
        const list = this.#postings.get(partition)?.get(term);
        if (list === undefined) continue;
        for (const [key, tf] of list) {
          if (exclude?.has(key) || (allowed !== undefined && !allowed.has(key))) continue;
          const length = this.#documents.get(key)!.length;
          const score = (idf * tf * (k1 + 1)) / (tf + k1 * (base + lengthShare * length));
          scores.set(key, (scores.get(key) ?? 0) + score);
        }
      }
    }
    return best(scores, limit);
  }
}

/** The `limit` highest-scoring entries, best first, ties by key. */
export function best(scores: Map<number, number>, limit: number): LexicalMatch[] {
  const out: LexicalMatch[] = [];
  for (const [key, score] of scores) out.push({ key, score });
  const byScore = (a: LexicalMatch, b: LexicalMatch) => b.score - a.score || a.key - b.key;
  if (out.length <= limit * 4) return out.sort(byScore).slice(0, limit);
  // Many matches: keep those at or above the limit-th best score (found by selection), then sort.
  const values = Float64Array.from(out, (m) => m.score);
  const cut = kthLargest(values, limit);
  return out
    .filter((m) => m.score >= cut)
    .sort(byScore)
    .slice(0, limit);
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
