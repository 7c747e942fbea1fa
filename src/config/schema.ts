import Type, { type Static } from 'typebox';
import { DistributedSchema } from './distributed-schema.js';
import { GrpcSchema, McpServerSchema, WebSocketSchema } from './interfaces-schema.js';
import { AgentMemorySchema, MemorySchema } from './memory-schema.js';
import { SandboxSchema } from './sandbox-schema.js';
import { CompactionSchema, SessionsSchema } from './sessions-schema.js';

/**
 * The one configuration schema: `agentd.yaml` / `agentd.json`, environment overrides and the
 * library's `createRuntime({ config })` are all validated against it. Keys are snake_case as
 * they appear in files.
 */

const Ms = (description: string, defaultValue: number) =>
  Type.Integer({ minimum: 1, description, default: defaultValue });

export const LlmTimeoutsSchema = Type.Object(
  {
    connect_ms: Ms('TCP/TLS connect limit', 10_000),
    headers_ms: Ms('from request sent to response headers', 60_000),
    first_token_ms: Ms('from request sent to the first streamed token', 60_000),
    idle_ms: Ms('longest silence between two stream chunks', 30_000),
  },
  { additionalProperties: false },
);

export const ProviderSchema = Type.Object(
  {
    type: Type.Union([Type.Literal('openai'), Type.Literal('mock')], {
      default: 'openai',
      description: '`openai` for any OpenAI-compatible endpoint; `mock` starts the built-in mock model',
    }),
    base_url: Type.Optional(
      Type.String({ format: 'uri', description: 'including the version prefix, e.g. /v1' }),
    ),
    api_key: Type.Optional(Type.String()),
    api_key_env: Type.Optional(Type.String({ description: 'read the key from this environment variable' })),
    headers: Type.Optional(Type.Record(Type.String(), Type.String())),
    connections: Type.Integer({ minimum: 1, maximum: 65_536, default: 128 }),
    http2: Type.Boolean({
      default: false,
      description:
        'HTTP/2, many streams per connection: negotiated over https (ALPN), prior knowledge (h2c) over http',
    }),
    max_concurrent_streams: Type.Integer({
      minimum: 1,
      default: 1000,
      description: 'HTTP/2 streams per connection',
    }),
    ca_file: Type.Optional(
      Type.String({ description: 'PEM file of a private CA to trust (self-hosted gateways)' }),
    ),
    stream_usage: Type.Boolean({ default: true, description: 'send stream_options.include_usage' }),
    timeouts: Type.Optional(
      Type.Object(
        {
          connect_ms: Type.Optional(Type.Integer({ minimum: 1 })),
          headers_ms: Type.Optional(Type.Integer({ minimum: 1 })),
          first_token_ms: Type.Optional(Type.Integer({ minimum: 1 })),
          idle_ms: Type.Optional(Type.Integer({ minimum: 1 })),
        },
        { additionalProperties: false, description: 'overrides llm.timeouts for this provider' },
      ),
    ),
  },
  { additionalProperties: false },
);

export const ModelSchema = Type.Object(
  {
    provider: Type.String({ description: 'a key of `providers`' }),
    name: Type.Optional(Type.String({ description: "the provider's model name (defaults to the key)" })),
    input_usd_per_mtok: Type.Number({ minimum: 0, default: 0 }),
    output_usd_per_mtok: Type.Number({ minimum: 0, default: 0 }),
    context_window: Type.Optional(Type.Integer({ minimum: 1 })),
    context_fallback: Type.Optional(
      Type.String({ description: 'a larger-context model used on context overflow' }),
    ),
    fallbacks: Type.Optional(Type.Array(Type.String(), { description: 'models tried when this one fails' })),
  },
  { additionalProperties: false },
);

export const TIERS = ['small', 'medium', 'large'] as const;
export type Tier = (typeof TIERS)[number];
export const MODES = ['simple', 'standard', 'complex', 'research'] as const;
export type Mode = (typeof MODES)[number];

const TierName = Type.Union(TIERS.map((t) => Type.Literal(t)));
const ModelChain = Type.Array(Type.String(), {
  minItems: 1,
  description: 'primary model first, then fallbacks',
});

export const BreakerSchema = Type.Object(
  {
    window_ms: Type.Integer({ minimum: 100, default: 30_000 }),
    min_requests: Type.Integer({ minimum: 1, default: 10 }),
    failure_rate: Type.Number({ minimum: 0, maximum: 1, default: 0.5 }),
    open_ms: Type.Integer({ minimum: 1, default: 15_000 }),
    half_open_probes: Type.Integer({ minimum: 1, default: 1 }),
    slow_call_ms: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false, default: {} },
);

export const SessionWindowSchema = Type.Object(
  {
    max_messages: Type.Integer({ minimum: 0, default: 50 }),
    max_tokens: Type.Integer({ minimum: 0, default: 8_000 }),
    compaction: Type.Optional(CompactionSchema),
  },
  { additionalProperties: false },
);

/** Limits that can apply to a scope (global, a tenant, a key, an agent). All optional. */
export const LimitSetSchema = Type.Object(
  {
    requests_per_second: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    burst: Type.Optional(
      Type.Integer({ minimum: 1, description: 'bucket size; defaults to one second of rate' }),
    ),
    tokens_per_minute: Type.Optional(Type.Integer({ minimum: 1, description: 'LLM input + output tokens' })),
    concurrency: Type.Optional(Type.Integer({ minimum: 1, description: 'tasks running at once' })),
    max_queue: Type.Optional(
      Type.Integer({ minimum: 0, description: 'tasks waiting for a concurrency slot' }),
    ),
    tokens_per_day: Type.Optional(Type.Integer({ minimum: 1 })),
    tokens_per_month: Type.Optional(Type.Integer({ minimum: 1 })),
    usd_per_day: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    usd_per_month: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    weight: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        description: "a tenant's share of task starts when several wait (default 1)",
      }),
    ),
    priority: Type.Optional(
      Type.Integer({
        minimum: -1000,
        maximum: 1000,
        description: "default priority of this tenant's or key's tasks",
      }),
    ),
  },
  { additionalProperties: false },
);

const RateSchema = Type.Object(
  {
    requests_per_second: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    burst: Type.Optional(Type.Integer({ minimum: 1 })),
    tokens_per_minute: Type.Optional(Type.Integer({ minimum: 1 })),
    concurrency: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export const AgentSchema = Type.Object(
  {
    description: Type.String({ default: '' }),
    model: Type.Optional(Type.String({ description: 'a model id from `models`, or a tier name' })),
    tier: Type.Optional(TierName),
    system_prompt: Type.String({ default: 'You are a helpful assistant.' }),
    tools: Type.Array(Type.String(), { default: [], description: 'names of tools this agent may call' }),
    max_iterations: Type.Integer({ minimum: 1, maximum: 1000, default: 8 }),
    timeout_ms: Type.Integer({ minimum: 1, default: 300_000 }),
    tool_timeout_ms: Type.Integer({ minimum: 1, default: 30_000 }),
    max_parallel_tools: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
    token_budget: Type.Optional(Type.Integer({ minimum: 1, description: 'input + output tokens per task' })),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
    max_output_tokens: Type.Optional(Type.Integer({ minimum: 1 })),
    session: Type.Optional(Type.Partial(SessionWindowSchema)),
    memory: Type.Optional(AgentMemorySchema),
    max_usd: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'cost one task may reach' })),
    cache: Type.Boolean({
      default: false,
      description: 'reuse model replies for identical requests (always on at temperature 0)',
    }),
    budget_step_down: Type.Boolean({
      default: false,
      description: 'near its budget, continue on the next cheaper tier instead of stopping',
    }),
    on_interrupt: Type.Union([Type.Literal('retry'), Type.Literal('fail')], {
      default: 'retry',
      description: 'what a restart does with a task that was running: run it again, or mark it failed',
    }),
    mcp_servers: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_-]{1,32}$' }), McpServerSchema, {
      default: {},
      description: 'MCP servers whose tools this agent may call, as <server>__<tool>',
    }),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65_535, default: 8787 }),
        body_limit_bytes: Type.Integer({ minimum: 1024, default: 1_048_576 }),
        max_wait_ms: Type.Integer({
          minimum: 0,
          default: 120_000,
          description: 'longest `wait` a request may ask',
        }),
        sse_heartbeat_ms: Type.Integer({ minimum: 100, default: 15_000 }),
        drain_timeout_ms: Type.Integer({
          minimum: 0,
          default: 30_000,
          description: 'on SIGTERM, how long running tasks may take to finish',
        }),
        websocket: WebSocketSchema,
        grpc: GrpcSchema,
        dashboard: Type.Boolean({ default: true, description: 'serve the web dashboard at `/`' }),
      },
      { additionalProperties: false, default: {} },
    ),
    storage: Type.Object(
      {
        path: Type.String({ default: '.agentd/agentd.db', description: 'SQLite file, or :memory:' }),
        url: Type.Optional(
          Type.String({
            pattern: '^postgres(ql)?://',
            description:
              'postgres://… to store in Postgres (DATABASE_URL sets it too); SQLite at `path` otherwise',
          }),
        ),
        schema: Type.String({
          pattern: '^[a-z_][a-z0-9_]{0,62}$',
          default: 'public',
          description: "Postgres schema for agentd's tables (created if missing)",
        }),
        pool_size: Type.Integer({ minimum: 1, default: 10, description: 'Postgres connections per node' }),
        flush_interval_ms: Type.Integer({
          minimum: 0,
          default: 10,
          description: 'longest a write nobody awaits waits to be committed in a batch',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info' },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    providers: Type.Record(Type.String(), ProviderSchema, { default: {} }),
    models: Type.Record(Type.String(), ModelSchema, { default: {} }),
    tiers: Type.Object(
      {
        small: Type.Optional(ModelChain),
        medium: Type.Optional(ModelChain),
        large: Type.Optional(ModelChain),
      },
      { additionalProperties: false, default: {} },
    ),
    modes: Type.Object(
      {
        simple: TierName,
        standard: TierName,
        complex: TierName,
        research: TierName,
      },
      {
        additionalProperties: false,
        default: { simple: 'small', standard: 'medium', complex: 'large', research: 'large' },
      },
    ),
    llm: Type.Object(
      {
        timeouts: Type.Object(LlmTimeoutsSchema.properties, { additionalProperties: false, default: {} }),
        retry: Type.Object(
          {
            max_attempts: Type.Integer({ minimum: 1, maximum: 10, default: 3 }),
            base_delay_ms: Type.Integer({ minimum: 0, default: 250 }),
            max_delay_ms: Type.Integer({ minimum: 0, default: 8_000 }),
            max_retry_after_ms: Type.Integer({
              minimum: 0,
              default: 10_000,
              description: 'a longer Retry-After fails over instead of waiting',
            }),
          },
          { additionalProperties: false, default: {} },
        ),
        breaker: BreakerSchema,
      },
      { additionalProperties: false, default: {} },
    ),
    agents: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), AgentSchema, { default: {} }),
    tools: Type.Object(
      {
        breaker: BreakerSchema,
        cache: Type.Record(Type.String(), Type.Integer({ minimum: 1 }), {
          default: {},
          description: 'tool name → result TTL in ms, for tools whose results may be reused',
        }),
        http_fetch: Type.Object(
          {
            allowed_hosts: Type.Array(Type.String(), { default: [], description: 'exact hosts or *.suffix' }),
            max_bytes: Type.Integer({ minimum: 1, default: 1_048_576 }),
            timeout_ms: Type.Integer({ minimum: 1, default: 10_000 }),
          },
          { additionalProperties: false, default: {} },
        ),
        direct_execute: Type.Array(Type.String(), {
          default: [],
          description:
            'tools POST /v1/tools/{name}/execute may run without naming an agent (none by default)',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    cache: Type.Object(
      {
        enabled: Type.Boolean({ default: true }),
        max_entries: Type.Integer({ minimum: 1, default: 10_000, description: 'L1 entries per cache' }),
        max_bytes: Type.Integer({
          minimum: 1024,
          default: 64 * 1024 * 1024,
          description: 'L1 memory per cache',
        }),
        response_ttl_ms: Type.Integer({
          minimum: 1,
          default: 3_600_000,
          description: 'cached model replies',
        }),
        negative_ttl_ms: Type.Integer({ minimum: 1, default: 5_000, description: 'cached "absent" results' }),
      },
      { additionalProperties: false, default: {} },
    ),
    observability: Type.Object(
      {
        metrics: Type.Object(
          {
            enabled: Type.Boolean({ default: true, description: 'serve GET /metrics (Prometheus)' }),
            tenant_labels: Type.Boolean({
              default: false,
              description: 'label cost by tenant (bounded cardinality: only turn on with few tenants)',
            }),
          },
          { additionalProperties: false, default: {} },
        ),
        request_log_sample_rate: Type.Number({
          minimum: 0,
          maximum: 1,
          default: 0,
          description: 'share of HTTP requests logged at info level',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    auth: Type.Object(
      {
        keys: Type.Array(
          Type.Object(
            {
              id: Type.String({ minLength: 1 }),
              hash: Type.String({
                pattern: '^sha256:[0-9a-f]{64}$',
                description: 'sha256 of the key, from `agentd keys hash`',
              }),
              tenant: Type.String({ minLength: 1 }),
              user: Type.Optional(Type.String()),
              agents: Type.Optional(Type.Array(Type.String())),
              limits: Type.Optional(LimitSetSchema),
            },
            { additionalProperties: false },
          ),
          {
            default: [],
            description: 'keys declared in configuration (in addition to `agentd keys create`)',
          },
        ),
        allow_unauthenticated: Type.Boolean({
          default: false,
          description: 'serve without API keys on a non-loopback address',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    limits: Type.Object(
      {
        global: Type.Optional(LimitSetSchema),
        default_tenant: Type.Optional(LimitSetSchema),
        tenants: Type.Record(Type.String(), LimitSetSchema, { default: {} }),
        default_user: Type.Optional(
          Type.Object({ concurrency: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }),
        ),
        agents: Type.Record(Type.String(), RateSchema, { default: {} }),
        models: Type.Record(Type.String(), RateSchema, { default: {} }),
        tools: Type.Record(Type.String(), RateSchema, { default: {} }),
        task: Type.Object(
          {
            max_tokens: Type.Optional(Type.Integer({ minimum: 1 })),
            max_usd: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
            max_output_tokens: Type.Optional(Type.Integer({ minimum: 1 })),
            max_iterations: Type.Optional(Type.Integer({ minimum: 1 })),
            timeout_ms: Type.Optional(Type.Integer({ minimum: 1 })),
          },
          {
            additionalProperties: false,
            default: {},
            description: 'ceilings no agent or request can exceed',
          },
        ),
        session: Type.Object(
          {
            max_tokens: Type.Optional(Type.Integer({ minimum: 1 })),
            max_usd: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          },
          { additionalProperties: false, default: {} },
        ),
        queue_timeout_ms: Type.Integer({
          minimum: 1,
          default: 30_000,
          description: 'longest wait for a concurrency slot',
        }),
        resource: Type.Object(
          {
            max_heap_mb: Type.Optional(
              Type.Integer({ minimum: 16, description: 'defaults to the V8 heap limit' }),
            ),
            max_event_loop_lag_ms: Type.Integer({ minimum: 1, default: 1000 }),
            warn_ratio: Type.Number({ minimum: 0, maximum: 1, default: 0.8 }),
            refuse_ratio: Type.Number({ minimum: 0, maximum: 1, default: 0.95 }),
            check_interval_ms: Type.Integer({ minimum: 10, default: 1000 }),
            sustain_checks: Type.Integer({
              minimum: 1,
              default: 3,
              description: 'consecutive checks past refuse_ratio before new tasks are refused',
            }),
          },
          { additionalProperties: false, default: {} },
        ),
        redis_fail_mode: Type.Union([Type.Literal('open'), Type.Literal('closed')], {
          default: 'open',
          description: 'Redis unreachable: fall back to local limits (open) or refuse (closed)',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    redis: Type.Object(
      {
        url: Type.Optional(Type.String({ description: 'redis://…; REDIS_URL sets it too' })),
        key_prefix: Type.String({ default: 'agentd:' }),
      },
      { additionalProperties: false, default: {} },
    ),
    sandbox: SandboxSchema,
    sessions: SessionsSchema,
    memory: MemorySchema,
    distributed: DistributedSchema,
    tasks: Type.Object(
      {
        max_concurrency: Type.Integer({ minimum: 1, default: 4096, description: 'tasks running at once' }),
        max_queue: Type.Integer({ minimum: 0, default: 10_000, description: 'tasks waiting to run' }),
        event_buffer: Type.Integer({
          minimum: 8,
          default: 512,
          description: 'events kept per task for resume',
        }),
        max_input_chars: Type.Integer({ minimum: 1, default: 200_000 }),
        recent_limit: Type.Integer({
          minimum: 0,
          default: 10_000,
          description:
            'finished tasks kept in memory (the newest, for at most 10 minutes) so their whole event log replays and reads skip storage; 0 keeps none: a finished task then replays only its final event',
        }),
        retention_ms: Type.Optional(
          Type.Integer({
            minimum: 60_000,
            description:
              'a finished task is deleted from storage this long after it finished (its result, events and idempotency key with it); kept forever unless set',
          }),
        ),
        retention_sweep_interval_ms: Type.Integer({
          minimum: 1000,
          default: 60_000,
          description: 'how often finished tasks past `retention_ms` are deleted',
        }),
        adaptive_concurrency: Type.Object(
          {
            enabled: Type.Boolean({ default: true }),
            target_lag_ms: Type.Integer({
              minimum: 1,
              default: 200,
              description: 'event-loop delay p99 to stay under',
            }),
            min_concurrency: Type.Integer({ minimum: 1, default: 16 }),
            interval_ms: Type.Integer({ minimum: 100, default: 1000 }),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
export type LimitSet = Static<typeof LimitSetSchema>;
export type BreakerConfig = Static<typeof BreakerSchema>;
export type AgentConfig = Static<typeof AgentSchema>;
export type ProviderConfig = Static<typeof ProviderSchema>;
export type ModelConfig = Static<typeof ModelSchema>;
export type LlmTimeouts = Static<typeof LlmTimeoutsSchema>;
export type SessionWindowConfig = Static<typeof SessionWindowSchema>;
