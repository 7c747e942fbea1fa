export { createEmbedder, createLongTermMemory, memoryIndexPath, memoryPath } from './create.js';
export { type Embedder, normalize } from './embedder.js';
export {
  type ExtractedFact,
  type FactPolicy,
  parseFacts,
  type RememberedFacts,
  rememberFacts,
  scopeFilter,
} from './extraction.js';
export { compileFilter } from './filter.js';
export { HashingEmbedder, type HashingEmbedderOptions } from './hashing-embedder.js';
export { type ImportedMemory, LongTermMemory, type LongTermMemoryOptions } from './long-term-memory.js';
export { OpenAiEmbedder, type OpenAiEmbedderOptions } from './openai-embedder.js';
export { PostgresMemoryStorage, type PostgresMemoryStorageOptions } from './postgres-storage.js';
export { type Recalled, type RecallSubject, recallForInput } from './recall.js';
export { fuse, MemorySearch, type SearchObserver } from './search.js';
export { SqliteMemoryStorage, type SqliteMemoryStorageOptions } from './sqlite-storage.js';
export { createMemoryTools } from './tools.js';
export {
  type ComponentScore,
  type EmbedderStamp,
  type FieldCondition,
  type ListQuery,
  type MemoryAction,
  type MemoryChanges,
  type MemoryFilter,
  type MemoryHistoryEntry,
  type MemoryPatch,
  type MemoryRecord,
  type MemoryScope,
  type MemorySnapshot,
  type MemoryStorage,
  type MetadataFilter,
  type NewMemory,
  SEARCH_MODES,
  type SearchHit,
  type SearchMode,
  type SearchQuery,
  type SearchResult,
} from './types.js';
export { VectorIndex, type VectorIndexOptions, type VectorMatch } from './vector-index.js';
