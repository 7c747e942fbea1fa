import Type, { type Static } from 'typebox';
import { ExtractionSchema } from './sessions-schema.js';

/**
 * The `memory` section: long-term memory storage, embedder, vector index and limits
 * (src/memory). Zero-config: memories live in a SQLite file beside the task store's and the
 * offline hashing embedder needs no model.
 */
export const MemorySchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: 'long-term memory, its routes and tools' }),
    storage: Type.Union([Type.Literal('auto'), Type.Literal('sqlite'), Type.Literal('postgres')], {
      default: 'auto',
      description:
        '`auto`: Postgres when `storage.url` (DATABASE_URL) is set, so nodes share memories; SQLite otherwise',
    }),
    path: Type.Optional(
      Type.String({
        description:
          'SQLite file for memories, or :memory: (default: `agentd-memory.db` beside `storage.path`, or `storage.path` itself when it already holds memories)',
      }),
    ),
    embedder: Type.Object(
      {
        kind: Type.Union([Type.Literal('hashing'), Type.Literal('openai')], {
          default: 'hashing',
          description: '`hashing`: offline, no model; `openai`: an OpenAI-compatible /v1/embeddings',
        }),
        dimensions: Type.Integer({ minimum: 8, maximum: 8192, default: 1024 }),
        base_url: Type.Optional(
          Type.String({
            description: 'for `openai`: base URL up to /v1 (default: the mock model or OPENAI_BASE_URL)',
          }),
        ),
        api_key_env: Type.String({
          default: 'OPENAI_API_KEY',
          description: 'environment variable with the key',
        }),
        model: Type.String({ default: 'text-embedding-3-small' }),
        request_dimensions: Type.Boolean({
          default: false,
          description: 'send `dimensions` to the provider (models that can shorten vectors)',
        }),
        batch_size: Type.Integer({ minimum: 1, maximum: 2048, default: 128 }),
        cache_entries: Type.Integer({ minimum: 0, default: 10_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    index: Type.Object(
      {
        exact_threshold: Type.Integer({
          minimum: 0,
          default: 20_000,
          description: 'filtered sets up to this size are searched exactly',
        }),
        hnsw_threshold: Type.Integer({
          minimum: 0,
          default: 50_000,
          description: 'build the HNSW index once this many memories are stored',
        }),
        quantization: Type.Union([Type.Literal('f32'), Type.Literal('f16'), Type.Literal('i8')], {
          default: 'i8',
          description: 'scalars of the HNSW graph walk; results are re-scored on the f32 vectors',
        }),
        connectivity: Type.Integer({ minimum: 2, maximum: 128, default: 16 }),
        expansion_add: Type.Integer({ minimum: 1, default: 128 }),
        expansion_search: Type.Integer({ minimum: 1, default: 128 }),
      },
      { additionalProperties: false, default: {} },
    ),
    max_text_chars: Type.Integer({ minimum: 1, default: 32_000 }),
    max_batch: Type.Integer({ minimum: 1, maximum: 100_000, default: 1000 }),
    sweep_interval_ms: Type.Integer({
      minimum: 1000,
      default: 60_000,
      description: 'how often memories past `expires_at` are purged',
    }),
  },
  { additionalProperties: false, default: {} },
);

/** An agent's `memory` option: what it recalls before answering. */
export const AgentMemorySchema = Type.Object(
  {
    recall: Type.Boolean({
      default: false,
      description: 'add the top memories for the input to the context',
    }),
    top_k: Type.Integer({ minimum: 1, maximum: 100, default: 5 }),
    max_tokens: Type.Integer({ minimum: 1, default: 1000, description: 'token budget of recalled memories' }),
    min_score: Type.Optional(Type.Number()),
    mode: Type.Union([Type.Literal('hybrid'), Type.Literal('semantic'), Type.Literal('fulltext')], {
      default: 'hybrid',
    }),
    scope: Type.Union([Type.Literal('user'), Type.Literal('agent'), Type.Literal('tenant')], {
      default: 'user',
      description: "whose memories: the task's user's, this agent's, or the whole tenant's",
    }),
    extract: Type.Optional(ExtractionSchema),
  },
  { additionalProperties: false },
);

export type MemoryConfig = Static<typeof MemorySchema>;
export type AgentMemoryConfig = Static<typeof AgentMemorySchema>;
