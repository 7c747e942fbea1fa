/**
 * What every subject of `npm run bench:memory:peers` implements: agentd's long-term memory and
 * each peer memory library, driven the way its own documentation shows, with the same
 * OpenAI-compatible embedder (agentd's mock) so that every subject stores identical vectors.
 */
export interface MemorySubjectContext {
  /** The mock's OpenAI-compatible base URL, including `/v1`. */
  baseURL: string;
  /** The embedding (and chat) model name sent to the mock. */
  model: string;
  /** Vector size the mock returns (384). */
  dimensions: number;
  /** A private scratch directory for the subject's database files. */
  dir: string;
}

/** One memory: `ref` is the bench's id for it (a LoCoMo turn), `text` what is stored. */
export interface MemoryItem {
  ref: string;
  text: string;
}

export interface MemorySubject {
  /** The search modes this subject offers, by the bench's name (the first is the semantic one). */
  readonly modes: readonly string[];
  /** Stores `items` for `user` in one call, batched as the library allows. */
  add(user: string, items: readonly MemoryItem[]): Promise<void>;
  /** The refs of the best `k` memories of `user` for `query`, best first where the library ranks. */
  search(user: string, query: string, k: number, mode: string): Promise<string[]>;
  close(): Promise<void>;
}

/** A subject module's exports. */
export interface MemorySubjectModule {
  create(context: MemorySubjectContext): Promise<MemorySubject>;
}
