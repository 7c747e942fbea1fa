import { type Embedder, normalize } from './embedder.js';
import { FeatureCounts } from './feature-counts.js';
import { contentWords } from './stopwords.js';

const FNV_OFFSET = 2166136261;
const FNV_PRIME = 16777619;
/** `<` and `>`: the marks around a word whose character n-grams are taken. */
const WORD_START = 60;
const WORD_END = 62;

/** FNV-1a steps over a string's UTF-16 units, from state `h`. */
function fnv(h: number, text: string): number {
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), FNV_PRIME);
  return h;
}

/**
 * The final avalanche, as a signed 32-bit integer, which V8 keeps unboxed (as map and set keys
 * too), where the unsigned form above 2^31 is a heap number.
 */
function avalanche(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 2246822507);
  h = Math.imul(h ^ (h >>> 13), 3266489909);
  return h ^ (h >>> 16);
}

/** FNV-1a over a string, then a final avalanche. */
function hash(text: string, seed: number): number {
  return avalanche(fnv(FNV_OFFSET ^ seed, text));
}

/** The hash of `first + ' ' + second`, without building that string. */
function hashPair(first: string, second: string, seed: number): number {
  return avalanche(fnv(Math.imul(fnv(FNV_OFFSET ^ seed, first) ^ 32, FNV_PRIME), second));
}

/** The hash of the `n` characters of `'<' + word + '>'` from `start`, without building strings. */
function hashGram(word: string, start: number, n: number, seed: number): number {
  let h = FNV_OFFSET ^ seed;
  const end = word.length + 1;
  for (let p = start; p < start + n; p++) {
    const c = p === 0 ? WORD_START : p === end ? WORD_END : word.charCodeAt(p - 1);
    h = Math.imul(h ^ c, FNV_PRIME);
  }
  return avalanche(h);
}

/** A weighted feature of a text: a word, a word pair, or a character n-gram of a word. */
interface Feature {
  id: number;
  weight: number;
}

export interface HashingEmbedderOptions {
  dimensions?: number;
  /** Character n-gram lengths taken inside each word (default 3 and 4). */
  ngrams?: number[];
  /** Weight of a word's n-grams together, relative to the word itself (default 0.5). */
  ngramWeight?: number;
  /** Weight of an adjacent word pair (default 0.5). */
  pairWeight?: number;
}

/**
 * The zero-configuration embedder: no model, no network. A text becomes hashed features (words,
 * adjacent word pairs, character n-grams of each word, so "paint" and "painting" share most of
 * theirs) with sublinear term frequency, signed-hashed into a fixed number of dimensions and
 * L2-normalised. Stored vectors depend only on their text, so they never go stale; the query
 * vector weights each feature by its inverse document frequency in the stored corpus, which is
 * where rare words earn their weight. Deterministic for a given corpus.
 */
export class HashingEmbedder implements Embedder {
  readonly name: string;
  readonly dimensions: number;
  readonly #ngrams: number[];
  readonly #ngramWeight: number;
  readonly #pairWeight: number;
  /** Documents containing each feature. */
  readonly #df = new FeatureCounts();
  #documents = 0;

  constructor(options: HashingEmbedderOptions = {}) {
    this.dimensions = options.dimensions ?? 1024;
    this.#ngrams = options.ngrams ?? [3, 4];
    this.#ngramWeight = options.ngramWeight ?? 0.5;
    this.#pairWeight = options.pairWeight ?? 0.5;
    this.name = `hashing-v1:${this.#ngrams.join(',')}:${this.#ngramWeight}:${this.#pairWeight}`;
  }

  /** Calls `visit` with every feature occurrence of a text, in order, with its weight. */
  #eachFeature(text: string, visit: (id: number, weight: number) => void): void {
    let previous: string | undefined;
    for (const word of contentWords(text)) {
      visit(hash(word, 1), 1);
      if (previous !== undefined && this.#pairWeight > 0)
        visit(hashPair(previous, word, 2), this.#pairWeight);
      previous = word;
      // The n-grams of `<word>`: word boundaries count as characters.
      const padded = word.length + 2;
      let grams = 0;
      for (const n of this.#ngrams) grams += Math.max(0, padded - n + 1);
      if (grams === 0 || this.#ngramWeight === 0) continue;
      // A word's n-grams together weigh as much as the word: long words do not dominate.
      const share = this.#ngramWeight / grams;
      for (const n of this.#ngrams) {
        for (let i = 0; i + n <= padded; i++) visit(hashGram(word, i, n, 3 + n), share);
      }
    }
  }

  #features(text: string): Map<number, number> {
    const counts = new Map<number, number>();
    this.#eachFeature(text, (id, weight) => {
      counts.set(id, (counts.get(id) ?? 0) + weight);
    });
    return counts;
  }

  #project(features: Iterable<Feature>): Float32Array {
    const vector = new Float32Array(this.dimensions);
    for (const { id, weight } of features) {
      const sign = id >= 0 ? 1 : -1;
      vector[(id >>> 0) % this.dimensions]! += sign * weight;
    }
    return normalize(vector);
  }

  async embedDocuments(texts: readonly string[]): Promise<Float32Array[]> {
    return texts.map((text) => this.embedDocument(text));
  }

  /** The stored vector of a text (synchronous: no I/O). */
  embedDocument(text: string): Float32Array {
    const features: Feature[] = [];
    for (const [id, count] of this.#features(text)) features.push({ id, weight: 1 + Math.log(count) });
    return this.#project(features);
  }

  async embedQuery(text: string): Promise<Float32Array> {
    const features: Feature[] = [];
    const n = this.#documents;
    for (const [id, count] of this.#features(text)) {
      // Squared: the stored side carries no IDF, so the query carries it for both.
      const idf = Math.log((n + 1) / (this.#df.get(id) + 1)) + 1;
      features.push({ id, weight: (1 + Math.log(count)) * idf * idf });
    }
    return this.#project(features);
  }

  observe(text: string, delta: 1 | -1): void {
    this.#documents += delta;
    const df = this.#df;
    df.nextDocument();
    this.#eachFeature(text, (id) => df.count(id, delta));
  }
}
