import { existsSync } from 'node:fs';
import { extname } from 'node:path';
import Database from 'better-sqlite3';
import type { Config, MemoryConfig } from '../config/index.js';
import { ConfigError } from '../errors.js';
import type { Embedder } from './embedder.js';
import { HashingEmbedder } from './hashing-embedder.js';
import { LongTermMemory } from './long-term-memory.js';
import { OpenAiEmbedder } from './openai-embedder.js';
import { PostgresMemoryStorage } from './postgres-storage.js';
import type { SearchObserver } from './search.js';
import { SqliteMemoryStorage } from './sqlite-storage.js';
import type { MemoryStorage } from './types.js';

export interface CreateMemoryOptions {
  config: MemoryConfig;
  /** The task store's settings: its SQLite file (see `memoryPath`) or its Postgres. */
  storage: Config['storage'];
  env: NodeJS.ProcessEnv;
  /** Base URL of the embedded mock model, the `openai` embedder's default when nothing else is set. */
  mockUrl?: string | undefined;
  observer?: SearchObserver | undefined;
}

/** SQLite's default page size, kept by a file memories share with the task store. */
const SHARED_FILE_PAGE_SIZE = 4096;

/** True when the SQLite file at `path` exists and already holds the memory tables. */
function holdsMemories(path: string): boolean {
  if (!existsSync(path)) return false;
  // Not read-only: a WAL file without its shared-memory file cannot be read by such a connection.
  const db = new Database(path, { fileMustExist: true });
  try {
    return (
      db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'memory_meta'`).get() !==
      undefined
    );
  } finally {
    db.close();
  }
}

/**
 * The SQLite file of memories: `memory.path` when set; else the task store's file when it already
 * holds memories (a store from before memories had a file of their own keeps using it: nothing is
 * moved or lost); else a file of their own beside it (`agentd.db` → `agentd-memory.db`), created
 * with 16 KB pages, while the task store keeps SQLite's 4 KB for its small commits.
 */
export function memoryPath(config: MemoryConfig, storagePath: string): string {
  if (config.path !== undefined) return config.path;
  if (storagePath === ':memory:' || holdsMemories(storagePath)) return storagePath;
  const extension = extname(storagePath);
  return `${storagePath.slice(0, storagePath.length - extension.length)}-memory${extension}`;
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

/** True when memories go to Postgres: `memory.storage`, or `auto` and the task store is there. */
function memoryInPostgres(config: MemoryConfig, storage: Config['storage']): boolean {
  const url = storage.url;
  if (config.storage === 'sqlite') return false;
  if (config.storage === 'postgres' && url === undefined)
    throw new ConfigError('memory.storage: `postgres` needs storage.url (or DATABASE_URL)');
  return url !== undefined;
}

/**
 * Opens long-term memory as configured: its storage (a SQLite file, see `memoryPath`, or the task
 * store's Postgres schema and pool settings, shared with other nodes), the embedder, the index.
 */
export async function createLongTermMemory(options: CreateMemoryOptions): Promise<LongTermMemory> {
  const config = options.config;
  const shared = memoryInPostgres(config, options.storage);
  const path = shared ? undefined : memoryPath(config, options.storage.path);
  const storage: MemoryStorage =
    path === undefined
      ? await PostgresMemoryStorage.open({
          url: options.storage.url!,
          schema: options.storage.schema,
          poolSize: options.storage.pool_size,
        })
      : new SqliteMemoryStorage({
          path,
          pageSize: path === options.storage.path ? SHARED_FILE_PAGE_SIZE : undefined,
        });
  const index = config.index;
  try {
    return await LongTermMemory.open({
      storage,
      embedder: createEmbedder(config.embedder, options.env, options.mockUrl),
      limits: { maxTextChars: config.max_text_chars },
      maxBatch: config.max_batch,
      // Shared storage: each node builds its index from Postgres at start (no local file to go stale).
      indexPath: path === undefined ? undefined : memoryIndexPath(path),
      shared,
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
  } catch (err) {
    await storage.close();
    throw err;
  }
}
