import Type, { type Static } from 'typebox';

/**
 * The `sessions` section (session lifetime and storage bounds) and the per-agent compaction and
 * fact-extraction options. Everything here is off unless configured.
 */
export const SessionsSchema = Type.Object(
  {
    idle_ttl_ms: Type.Optional(
      Type.Integer({
        minimum: 1000,
        description:
          'a session idle longer is deleted with its messages; a later task with its id starts a new session',
      }),
    ),
    sweep_interval_ms: Type.Integer({
      minimum: 1000,
      default: 60_000,
      description: 'how often idle sessions are deleted (with `idle_ttl_ms`)',
    }),
    max_messages: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: 'messages kept per session; past it the oldest are deleted from storage',
      }),
    ),
    max_bytes: Type.Optional(
      Type.Integer({
        minimum: 1024,
        description: 'bytes of message JSON kept per session; past it the oldest are deleted from storage',
      }),
    ),
  },
  { additionalProperties: false, default: {} },
);

export const DEFAULT_COMPACTION_PROMPT =
  'Summarise the conversation below for the assistant that continues it. Keep every fact, name, number, decision, open question and user preference; drop pleasantries. If an earlier summary is given, merge it in. Write plain prose, at most a few paragraphs.';

/** An agent's `session.compaction`: summarise older turns once the session nears the model's context. */
export const CompactionSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    threshold: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      default: 0.75,
      description: "share of the model's context window the unsummarised session may fill",
    }),
    keep_messages: Type.Integer({
      minimum: 0,
      default: 6,
      description: 'newest messages kept verbatim after the summary',
    }),
    model: Type.Optional(Type.String({ description: "the model that summarises (default: the agent's)" })),
    prompt: Type.String({ default: DEFAULT_COMPACTION_PROMPT }),
    max_summary_tokens: Type.Integer({ minimum: 16, default: 1024 }),
    context_window: Type.Integer({
      minimum: 256,
      default: 32_768,
      description: 'the context window assumed for a model whose `context_window` is not configured',
    }),
  },
  { additionalProperties: false },
);

export const DEFAULT_EXTRACTION_PROMPT =
  'Extract durable facts worth remembering about the user from the conversation below: preferences, personal details, decisions, plans. Each fact is one self-contained sentence. Skip small talk and anything only true for this moment. When a fact replaces one of the known memories listed, give that memory\'s id in "supersedes". Answer with JSON only: {"facts": [{"text": "...", "supersedes": "<id, optional>", "importance": 0.5, "tags": []}]}. Answer {"facts": []} when there is nothing to remember.';

/** An agent's `memory.extract`: after a task, the model extracts facts into long-term memory. */
export const ExtractionSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    model: Type.Optional(Type.String({ description: "the model that extracts (default: the agent's)" })),
    prompt: Type.String({ default: DEFAULT_EXTRACTION_PROMPT }),
    scope: Type.Union([Type.Literal('user'), Type.Literal('agent'), Type.Literal('tenant')], {
      default: 'user',
      description: "whose memories facts join: the task's user's, this agent's, or the tenant's",
    }),
    max_facts: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
    duplicate_similarity: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 0.92,
      description: 'a fact this similar (cosine) to a stored memory merges into it instead of being added',
    }),
    related: Type.Integer({
      minimum: 0,
      maximum: 50,
      default: 10,
      description: 'stored memories shown to the model so that it can name one a fact supersedes',
    }),
  },
  { additionalProperties: false },
);

export type SessionsConfig = Static<typeof SessionsSchema>;
export type CompactionConfig = Static<typeof CompactionSchema>;
export type ExtractionConfig = Static<typeof ExtractionSchema>;
