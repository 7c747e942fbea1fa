import type { MemoryConfig } from '../config/index.js';
import { ConfigError } from '../errors.js';
import type { Embedder } from './embedder.js';
import { HashingEmbedder } from './hashing-embedder.js';
import { LongTermMemory } from './long-term-memory.js';
import { OpenAiEmbedder } from './openai-embedder.js';
import type { SearchObserver } from './search.js';
import { SqliteMemoryStorage } from './sqlite-storage.js';

export interface CreateMemoryOptions {
  config: MemoryConfig;
  /** The task store's file, used when `memory.path` is unset. */
  storagePath: string;
  env: NodeJS.ProcessEnv;
  /** Base URL of the embedded mock model, the `openai` embedder's default when nothing else is set. */
  mockUrl?: string | undefined;
  observer?: SearchObserver | undefined;
}

/** Where the HNSW index of a memory file is saved (none for an in-memory database). */
export function memoryIndexPath(path: string): string | undefined {
  return path === ':memory:' ? undefined : `${path}.memory.usearch`;
}

/** The embedder the configuration names. */
export function createEmbedder(
  config: MemoryConfig['embedder'],
  env: NodeJS.ProcessEnv,
  mockUrl?: string,
): Embedder {
  if (config.kind === 'hashing') return new HashingEmbedder({ dimensions: config.dimensions });
  const baseUrl = config.base_url ?? env.OPENAI_BASE_URL ?? (env[config.api_key_env] ? undefined : mockUrl);
  if (baseUrl === undefined) {
    throw new ConfigError(
      'memory.embedder.base_url: the `openai` embedder needs a base URL (or OPENAI_BASE_URL)',
    );
  }
  return new OpenAiEmbedder({
    baseUrl,
    apiKey: env[config.api_key_env],
    model: config.model,
    dimensions: config.dimensions,
    requestDimensions: config.request_dimensions,
    batchSize: config.batch_size,
    cacheEntries: Math.max(1, config.cache_entries),
  });
}

/** Opens long-term memory as configured: SQLite storage, the embedder, the vector index. */
export function createLongTermMemory(options: CreateMemoryOptions): Promise<LongTermMemory> {
  const config = options.config;
  const path = config.path ?? options.storagePath;
  const index = config.index;
  return LongTermMemory.open({
    storage: new SqliteMemoryStorage({ path }),
    embedder: createEmbedder(config.embedder, options.env, options.mockUrl),
    limits: { maxTextChars: config.max_text_chars },
    maxBatch: config.max_batch,
    indexPath: memoryIndexPath(path),
    index: {
      exactThreshold: index.exact_threshold,
      hnswThreshold: index.hnsw_threshold,
      quantization: index.quantization,
      connectivity: index.connectivity,
      expansionAdd: index.expansion_add,
      expansionSearch: index.expansion_search,
    },
    observer: options.observer,
  });
}
