import Type, { type Static, type TSchema } from 'typebox';
import type { Identity } from '../admission/index.js';
import { MODES, TIERS } from '../config/index.js';
import type { SubmitRequest } from '../runtime/index.js';
import type { TaskRecord } from '../store/index.js';

/** A nullable primitive as `type: [T, "null"]`, which fast-json-stringify serialises quickly. */
function Nullable<T extends TSchema & { type: string }>(schema: T) {
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [schema.type, 'null'] });
}

const FreeObject = Type.Object({}, { additionalProperties: true });

export const ErrorBodySchema = Type.Object({
  code: Type.String({ description: 'stable error code, e.g. AGENTD_RATE_LIMITED' }),
  message: Type.String(),
  retryable: Type.Boolean(),
  retry_after_ms: Type.Optional(Type.Integer()),
  details: Type.Optional(FreeObject),
});

export const ErrorResponseSchema = Type.Object({ error: ErrorBodySchema });

/**
 * A string enum rather than a union of literals: fast-json-stringify serialises a union by
 * running a validator per branch on every response; an enum is written as a plain string.
 */
const TaskStatusSchema = Type.Unsafe<'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled'>({
  type: 'string',
  enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled'],
});

/** A nullable object as `type: ["object", "null"]` (no per-response validator, as for `Nullable`). */
function NullableObject<T extends TSchema & { type: 'object' }>(schema: T) {
  return Type.Unsafe<Static<T> | null>({ ...schema, type: ['object', 'null'] });
}

export const UsageSchema = Type.Object({
  input_tokens: Type.Integer(),
  output_tokens: Type.Integer(),
  total_tokens: Type.Integer(),
});

export const TaskSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('task'),
  agent: Type.String(),
  status: TaskStatusSchema,
  input: Type.String(),
  result: Nullable(Type.String()),
  partial: Type.Boolean({ description: 'result is partial output of a task stopped by a limit' }),
  error: NullableObject(ErrorBodySchema),
  model: Nullable(Type.String({ description: 'the model that produced the answer' })),
  usage: UsageSchema,
  cost_usd: Type.Number(),
  iterations: Type.Integer(),
  tool_calls: Type.Integer(),
  session_id: Nullable(Type.String()),
  user_id: Nullable(Type.String()),
  metadata: NullableObject(FreeObject),
  attempt: Type.Integer(),
  created_at: Type.String({ format: 'date-time' }),
  started_at: Nullable(Type.String({ format: 'date-time' })),
  finished_at: Nullable(Type.String({ format: 'date-time' })),
});

export type TaskJson = Static<typeof TaskSchema>;

/** The API shape of a task. */
export function taskJson(record: TaskRecord): TaskJson {
  return {
    id: record.id,
    object: 'task',
    agent: record.agent,
    status: record.status,
    input: record.input,
    result: record.result,
    partial: record.partial,
    error: record.error,
    model: record.model,
    usage: {
      input_tokens: record.usage.input_tokens,
      output_tokens: record.usage.output_tokens,
      total_tokens: record.usage.input_tokens + record.usage.output_tokens,
    },
    cost_usd: record.cost_usd,
    iterations: record.iterations,
    tool_calls: record.tool_calls,
    session_id: record.session_id,
    user_id: record.user_id,
    metadata: record.metadata,
    attempt: record.attempt,
    created_at: new Date(record.created_at).toISOString(),
    started_at: record.started_at === null ? null : new Date(record.started_at).toISOString(),
    finished_at: record.finished_at === null ? null : new Date(record.finished_at).toISOString(),
  };
}

const Selector = {
  model: Type.Optional(
    Type.String({ minLength: 1, maxLength: 256, description: 'model id, tier, or provider/model' }),
  ),
  tier: Type.Optional(Type.Union(TIERS.map((t) => Type.Literal(t)))),
  mode: Type.Optional(
    Type.Union(
      MODES.map((m) => Type.Literal(m)),
      { description: 'simple→small, standard→medium, complex/research→large' },
    ),
  ),
};

const TaskFields = {
  input: Type.String({ minLength: 1, description: 'the user message' }),
  session_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:-]+$' })),
  user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { maxProperties: 64 })),
  ...Selector,
  tools: Type.Optional(
    Type.Array(Type.String({ maxLength: 64 }), { maxItems: 128, description: 'narrows the agent tools' }),
  ),
  timeout_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400_000 })),
  cache: Type.Optional(Type.Boolean({ description: 'reuse a cached reply for an identical request' })),
  deadline_ms: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 86_400_000,
      description: 'fail unless the task starts within this many ms',
    }),
  ),
};

export const CreateTaskBody = Type.Object(
  {
    agent: Type.String({ minLength: 1, maxLength: 64 }),
    ...TaskFields,
    priority: Type.Optional(
      Type.Integer({ minimum: -1000, maximum: 1000, description: 'higher runs first' }),
    ),
    wait: Type.Optional(
      Type.Union([Type.Boolean(), Type.Integer({ minimum: 0 })], {
        description: 'true, or milliseconds: wait for the result before answering',
      }),
    ),
  },
  { additionalProperties: false },
);

export const RunAgentBody = Type.Object(
  {
    ...TaskFields,
    stream: Type.Optional(Type.Boolean({ description: 'answer with server-sent events' })),
  },
  { additionalProperties: false },
);

export type RunAgentRequest = Static<typeof RunAgentBody>;

export type CreateTaskRequest = Static<typeof CreateTaskBody>;

/**
 * What a task-creating body (`POST /v1/tasks`, `/v1/agents/{name}/run`, a WebSocket `submit`)
 * asks of `runtime.submit`; transport-specific fields (priority, idempotency key) are set by the
 * caller on the returned request.
 */
export function submitRequest(
  agent: string,
  body: RunAgentRequest | CreateTaskRequest,
  identity: Identity,
  traceparent: string | undefined,
): SubmitRequest {
  return {
    agent,
    input: body.input,
    identity,
    traceparent,
    sessionId: body.session_id,
    metadata: body.metadata,
    model: body.model,
    tier: body.tier,
    mode: body.mode,
    tools: body.tools,
    timeoutMs: body.timeout_ms,
    cache: body.cache,
    deadlineMs: body.deadline_ms,
  };
}

const Message = Type.Object(
  {
    role: Type.Union([
      Type.Literal('system'),
      Type.Literal('developer'),
      Type.Literal('user'),
      Type.Literal('assistant'),
      Type.Literal('tool'),
      Type.Literal('function'),
    ]),
  },
  { additionalProperties: true },
);

/** The body of `POST /v1/chat/completions` (OpenAI's; unknown fields go to the provider). */
export const ChatCompletionRequest = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 512 }),
    messages: Type.Array(Message, { minItems: 1 }),
    stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    stream_options: Type.Optional(
      Type.Union([
        Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, { additionalProperties: true }),
        Type.Null(),
      ]),
    ),
    tools: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }))),
    temperature: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 2 }), Type.Null()])),
    max_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
    user: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: true },
);

export const TaskParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
export const AgentParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) });
export const SessionParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });

export const ListTasksQuery = Type.Object(
  {
    session: Type.Optional(Type.String({ maxLength: 128, description: 'alias of session_id' })),
    session_id: Type.Optional(Type.String({ maxLength: 128 })),
    status: Type.Optional(
      Type.Union(['queued', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => Type.Literal(s))),
    ),
    agent: Type.Optional(Type.String({ maxLength: 64 })),
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);

export const EventsQuery = Type.Object(
  { after: Type.Optional(Type.String({ maxLength: 32, description: 'resume after this event id' })) },
  { additionalProperties: false },
);

export const MessagesQuery = Type.Object(
  {
    after: Type.Integer({ minimum: 0, default: 0, description: 'sequence number to start after' }),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
  },
  { additionalProperties: false },
);

/** A failed synchronous run: the error, and the task with any partial output. */
export const RunErrorSchema = Type.Object({ error: ErrorBodySchema, task: Type.Optional(TaskSchema) });

export const TaskPageSchema = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(TaskSchema),
  next_cursor: Nullable(Type.String()),
});

export const AgentSchema = Type.Object({
  name: Type.String(),
  description: Type.String(),
  model: Nullable(Type.String()),
  tools: Type.Array(Type.String()),
  max_iterations: Type.Integer(),
});

export const MessageSchema = Type.Object({
  seq: Type.Integer(),
  /** `summary`: a compaction summary of the messages before it (which stay listed). */
  kind: Type.Union([Type.Literal('message'), Type.Literal('summary')]),
  role: Type.String(),
  content: Nullable(Type.String()),
  tool_calls: Type.Optional(Type.Array(FreeObject)),
  tool_call_id: Type.Optional(Type.String()),
  task_id: Nullable(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
});

export const HealthSchema = Type.Object({
  status: Type.String(),
  version: Type.String(),
  uptime_seconds: Type.Integer(),
  active_tasks: Type.Integer(),
  queued_tasks: Type.Integer(),
  total_tasks: Type.Integer(),
  store: Type.String(),
  provider: Type.String(),
  checks: Type.Optional(Type.Object({}, { additionalProperties: true })),
});
