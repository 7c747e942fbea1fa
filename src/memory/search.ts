import { InvalidRequestError } from '../errors.js';
import type { Span } from '../observability/index.js';
import type { Embedder } from './embedder.js';
import type { LexicalIndex } from './lexical-index.js';
import { type ScopeCatalog, type Selection, selectionSize } from './scope-catalog.js';
import {
  type ComponentScore,
  type MemoryStorage,
  SEARCH_MODES,
  type SearchHit,
  type SearchMode,
  type SearchQuery,
  type SearchResult,
} from './types.js';
import { checkVector } from './validate.js';
import type { VectorIndex, VectorMatch } from './vector-index.js';

/** Reciprocal-rank fusion constant: the usual 60 (Cormack et al.). */
const RRF_K = 60;
const MAX_TOP_K = 1000;
/**
 * The semantic ranking's default weight in hybrid fusion. Half the full-text weight: with the
 * offline embedder the vector ranking is a weaker, partly redundant signal (LoCoMo: 0.61 vs 0.53
 * recall@10 alone), and an equal vote pulls good BM25 hits down.
 */
const DEFAULT_SEMANTIC_WEIGHT = 0.5;
/**
 * The share of its session neighbours' scores (the memories added just before and after it in the
 * same session) a memory gets in hybrid search. A conversation turn often answers, or is answered
 * by, the turn beside it ("What did you research?" / "Adoption agencies"), so a strong match
 * lends its neighbours part of its score. LoCoMo: 0.3 lifts recall@10 by about 0.04 and keeps
 * recall@1 (see discuss/0201-memory-search-performance-and-quality.md).
 */
const DEFAULT_CONTEXT_WEIGHT = 0.3;
/** How deep each component ranks in hybrid search, at least: fusion and context need overlap. */
const HYBRID_DEPTH = 100;

/** Told about every search: metrics and tracing hook in here. */
export interface SearchObserver {
  /** Called before a search (inside `parent`, a task's span); the returned function gets its outcome. */
  start(
    mode: SearchMode,
    parent: Span | undefined,
  ): (result: SearchResult | undefined, error: unknown) => void;
}

export interface SearchContext {
  /** Undefined when the stored vectors belong to another embedder. */
  embedder: Embedder | undefined;
  index: VectorIndex;
  /** Answers scope-only filters without storage. */
  catalog: ScopeCatalog;
  /** BM25 over the indexed memories: the lexical side of hybrid search. */
  lexical: LexicalIndex;
  signal?: AbortSignal | undefined;
  /** The span a search runs in (recall inside a task). */
  parent?: Span | undefined;
}

interface Ranked {
  key: number;
  score: number;
}

/**
 * The query planner and executor: full text through FTS5 (BM25), vectors through the index
 * (exact over a filtered set, HNSW for large ones), exact substring matches through SQL, and
 * hybrid as weighted reciprocal-rank fusion of full text and vectors. Filters are applied inside
 * each component, before its top-k cut.
 */
export class MemorySearch {
  readonly #storage: MemoryStorage;
  readonly #observer: SearchObserver | undefined;

  constructor(storage: MemoryStorage, observer: SearchObserver | undefined) {
    this.#storage = storage;
    this.#observer = observer;
  }

  async run(query: SearchQuery, context: SearchContext): Promise<SearchResult> {
    const mode = this.#mode(query, context);
    const done = this.#observer?.start(mode, context.parent);
    try {
      const result = await this.#execute(query, mode, context);
      done?.(result, undefined);
      return result;
    } catch (err) {
      done?.(undefined, err);
      throw err;
    }
  }

  #mode(query: SearchQuery, context: SearchContext): SearchMode {
    if (query.mode !== undefined) {
      if (!(SEARCH_MODES as readonly string[]).includes(query.mode))
        throw new InvalidRequestError(`mode must be one of ${SEARCH_MODES.join(', ')}`, {
          details: { field: 'mode' },
        });
      return query.mode;
    }
    const text = query.text?.trim() ?? '';
    if (text.length === 0) return query.vector !== undefined ? 'semantic' : 'exact';
    return context.embedder === undefined && query.vector === undefined ? 'fulltext' : 'hybrid';
  }

  async #execute(query: SearchQuery, mode: SearchMode, context: SearchContext): Promise<SearchResult> {
    const topK = query.top_k ?? 10;
    if (!Number.isInteger(topK) || topK < 1 || topK > MAX_TOP_K)
      throw new InvalidRequestError(`top_k must be an integer from 1 to ${MAX_TOP_K}`, {
        details: { field: 'top_k' },
      });
    for (const field of ['fulltext', 'semantic', 'context'] as const) {
      const weight = query.weights?.[field];
      if (weight !== undefined && !(typeof weight === 'number' && weight >= 0 && Number.isFinite(weight)))
        throw new InvalidRequestError(`weights.${field} must be a number ≥ 0`, {
          details: { field: `weights.${field}` },
        });
    }
    if (query.min_score !== undefined && !Number.isFinite(query.min_score))
      throw new InvalidRequestError('min_score must be a number', { details: { field: 'min_score' } });
    const text = query.text?.trim() ?? '';
    if ((mode === 'fulltext' || mode === 'hybrid') && text.length === 0)
      throw new InvalidRequestError(`mode "${mode}" needs a text`, { details: { field: 'text' } });
    const now = Date.now();
    const tenant = query.tenant_id;
    const filter = query.filter;
    const scores = new Map<number, SearchHit['scores']>();
    let ranked: Ranked[];
    let strategy: SearchResult['strategy'] = 'none';
    let candidates = 0;

    if (mode === 'exact') {
      const keys = await this.#storage.exact(tenant, text, filter, topK, now);
      ranked = keys.map((key, i) => {
        scores.set(key, { exact: { score: 1, rank: i + 1 } });
        return { key, score: 1 };
      });
      candidates = keys.length;
    } else {
      // Components fetch more than top_k so that fusion has overlap to work with.
      const depth = mode === 'hybrid' ? Math.max(topK * 3, HYBRID_DEPTH) : topK;
      let lexical: Ranked[] = [];
      let semantic: VectorMatch[] = [];
      if (mode === 'fulltext') {
        lexical = await this.#storage.fulltext(tenant, text, filter, depth, now);
        record(scores, lexical, 'fulltext');
      } else {
        const vector = await this.#queryVector(query, text, context);
        const selection: Selection = context.catalog.select(tenant, filter, now) ?? {
          kind: 'keys',
          keys: await this.#storage.filterKeys(tenant, filter, now),
        };
        candidates = selectionSize(selection);
        strategy = context.index.strategy(candidates);
        semantic = context.index.search(vector, depth, selection);
        if (mode === 'hybrid') {
          lexical = context.lexical.search(tenant, text, depth, selection);
          const share = query.weights?.context ?? DEFAULT_CONTEXT_WEIGHT;
          if (share > 0) {
            const member = context.catalog.member(selection);
            const neighbours = (key: number) => context.catalog.neighbours(key).filter(member);
            lexical = withContext(lexical, share, neighbours);
            semantic = withContext(semantic, share, neighbours);
          }
          record(scores, lexical, 'fulltext');
        }
        record(scores, semantic, 'semantic');
      }
      if (mode === 'hybrid') {
        ranked = fuse(
          lexical,
          semantic,
          query.weights?.fulltext ?? 1,
          query.weights?.semantic ?? DEFAULT_SEMANTIC_WEIGHT,
        );
      } else {
        ranked = mode === 'fulltext' ? lexical : semantic;
        if (mode === 'fulltext') candidates = lexical.length;
      }
    }
    if (query.min_score !== undefined) ranked = ranked.filter((r) => r.score >= query.min_score!);
    ranked = ranked.slice(0, topK);
    const records = await this.#storage.byKeys(ranked.map((r) => r.key));
    const hits: SearchHit[] = [];
    for (const r of ranked) {
      const memory = records.get(r.key);
      // Deleted between ranking and reading: dropped rather than returned stale.
      if (memory !== undefined) hits.push({ memory, score: r.score, scores: scores.get(r.key) ?? {} });
    }
    return { hits, mode, strategy, candidates };
  }

  async #queryVector(query: SearchQuery, text: string, context: SearchContext): Promise<Float32Array> {
    if (query.vector !== undefined) return checkVector(query.vector, context.index.dimensions, 'vector');
    if (text.length === 0)
      throw new InvalidRequestError('semantic search needs a text or a vector', {
        details: { field: 'text' },
      });
    return context.embedder!.embedQuery(text, context.signal);
  }
}

function record(
  scores: Map<number, SearchHit['scores']>,
  ranked: Ranked[],
  component: 'fulltext' | 'semantic',
): void {
  for (let i = 0; i < ranked.length; i++) {
    const { key, score } = ranked[i]!;
    const entry: ComponentScore = { score, rank: i + 1 };
    const existing = scores.get(key);
    if (existing === undefined) scores.set(key, { [component]: entry });
    else existing[component] = entry;
  }
}

/**
 * Adds to each ranked memory `share` of its session neighbours' scores (a neighbour that did not
 * rank itself joins with that share alone), and re-ranks. Neighbours come from the selection only.
 */
function withContext(ranked: Ranked[], share: number, neighbours: (key: number) => number[]): Ranked[] {
  const own = new Map<number, number>();
  for (const { key, score } of ranked) own.set(key, score);
  const out = new Map(own);
  for (const { key, score } of ranked) {
    if (score <= 0) continue;
    for (const neighbour of neighbours(key)) out.set(neighbour, (out.get(neighbour) ?? 0) + share * score);
  }
  const result: Ranked[] = [];
  for (const [key, score] of out) result.push({ key, score });
  return result.sort((a, b) => b.score - a.score || a.key - b.key);
}

/** Weighted reciprocal-rank fusion; ties broken by row key so results are stable. */
export function fuse(lexical: Ranked[], semantic: Ranked[], wLexical: number, wSemantic: number): Ranked[] {
  // A zero weight turns its component off rather than adding its hits with no score.
  if (wLexical === 0) lexical = [];
  if (wSemantic === 0) semantic = [];
  const fused = new Map<number, number>();
  for (let i = 0; i < lexical.length; i++) {
    const key = lexical[i]!.key;
    fused.set(key, (fused.get(key) ?? 0) + wLexical / (RRF_K + i + 1));
  }
  for (let i = 0; i < semantic.length; i++) {
    const key = semantic[i]!.key;
    fused.set(key, (fused.get(key) ?? 0) + wSemantic / (RRF_K + i + 1));
  }
  const out: Ranked[] = [];
  for (const [key, score] of fused) out.push({ key, score });
  return out.sort((a, b) => b.score - a.score || a.key - b.key);
}
