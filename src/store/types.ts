import type { ErrorBody } from '../errors.js';
import type { ChatMessage, Usage } from '../llm/index.js';

export type TaskStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(['succeeded', 'failed', 'cancelled']);

/** What a task was asked to do, kept so a queued task can run after a restart. */
export interface TaskOptions {
  model?: string | undefined;
  tier?: string | undefined;
  mode?: string | undefined;
  /** Narrows the agent's tool list for this task. */
  tools?: string[] | undefined;
  priority?: number | undefined;
  timeout_ms?: number | undefined;
  /** Reuse cached model replies for this task (like the agent's `cache`). */
  cache?: boolean | undefined;
  /** Epoch ms by which the task must have started, or it fails with AGENTD_DEADLINE_EXCEEDED. */
  deadline_at?: number | undefined;
}

/** A task as stored and as returned by the API. Times are milliseconds since the epoch. */
export interface TaskRecord {
  id: string;
  agent: string;
  tenant_id: string;
  user_id: string | null;
  session_id: string | null;
  status: TaskStatus;
  input: string;
  result: string | null;
  /** True when `result` is partial output kept from a task stopped by its budget or a limit. */
  partial: boolean;
  error: ErrorBody | null;
  /** The model that produced the last answer (after any fail-over). */
  model: string | null;
  usage: Usage;
  cost_usd: number;
  iterations: number;
  tool_calls: number;
  idempotency_key: string | null;
  metadata: Record<string, unknown> | null;
  options: TaskOptions;
  /** Runs of this task: 1, plus one per restart that ran it again. */
  attempt: number;
  /** Sequence number of the last event of the current run (its `task.completed` once finished). */
  event_seq: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export interface SessionRecord {
  id: string;
  tenant_id: string;
  created_at: number;
  updated_at: number;
  message_count: number;
  /** Tokens and cost of the session's tasks so far (for session budgets). */
  tokens_used: number;
  usd_used: number;
  /** Oldest retained message: messages before it were dropped by the session caps. */
  first_seq: number;
  /** Bytes of the retained messages (their JSON), for `sessions.max_bytes`. */
  bytes: number;
  /** Tokens of the messages after the summary: what compaction compares with the context. */
  window_tokens: number;
  /** Messages up to this sequence number are summarised by `summary` (0: no summary). */
  summary_through: number;
  summary: string | null;
  summary_tokens: number;
}

/** Bounds on what one session stores. At a bound, the oldest messages are dropped from storage. */
export interface SessionCaps {
  /** Most messages kept per session (undefined: no bound). */
  maxMessages?: number | undefined;
  /** Most bytes of message JSON kept per session (undefined: no bound). */
  maxBytes?: number | undefined;
}

/** A summary of a session's older messages, replacing them in the window (they stay stored). */
export interface SessionSummary {
  /** The `summary_through` the summary was computed from: the write is refused if it moved. */
  expectedThrough: number;
  /** The last message the summary covers. */
  through: number;
  content: string;
  tokens: number;
  task_id: string | null;
}

/** An API key as stored: only its hash, never the key. */
export interface ApiKeyRecord {
  id: string;
  /** The first characters of the key, to recognise it in lists. */
  prefix: string;
  /** `sha256:<hex>` of the whole key. */
  hash: string;
  tenant_id: string;
  user_id: string | null;
  name: string | null;
  /** Agents the key may run; null means all. */
  agents: string[] | null;
  /** Limits carried by the key (same fields as a tenant's). */
  limits: Record<string, number> | null;
  created_at: number;
  revoked_at: number | null;
}

export interface StoredMessage {
  seq: number;
  /** `summary` for a compaction summary, `message` otherwise. */
  kind: MessageKind;
  message: ChatMessage;
  tokens: number;
  task_id: string | null;
  created_at: number;
}

export type MessageKind = 'message' | 'summary';

/** A message to append, with its token estimate and the task that produced it. */
export interface NewMessage {
  message: ChatMessage;
  tokens: number;
  task_id: string | null;
}

export interface TaskQuery {
  tenant_id: string;
  session_id?: string | undefined;
  status?: TaskStatus | undefined;
  agent?: string | undefined;
  limit: number;
  cursor?: string | undefined;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/**
 * Durable state for tasks and sessions. Writes may be batched; `insertTask` resolves only once the
 * task is durable, and every read sees every earlier write. A finished task's row holds all its
 * final event carries, so events themselves live only in memory (and, distributed, in Redis).
 */
export interface Store {
  /** `sqlite` or `postgres`. */
  readonly kind: string;

  /**
   * Stores a new task. With `durable`, the write is committed promptly and the promise resolves
   * once it is; otherwise it is batched (a store may hold an unfinished task back one batch so a
   * short task is written once) and the promise settles once it is committed.
   */
  insertTask(task: TaskRecord, durable?: boolean): Promise<void>;
  /** Persists the task's current state; batched with other writes. */
  updateTask(task: TaskRecord): void;
  getTask(id: string): Promise<TaskRecord | undefined>;
  findTaskByIdempotencyKey(tenantId: string, key: string): Promise<TaskRecord | undefined>;
  listTasks(query: TaskQuery): Promise<Page<TaskRecord>>;
  /**
   * Deletes up to `limit` finished tasks (succeeded, failed or cancelled) that finished before
   * `finishedBefore`, oldest first; how many. Queued and running tasks are never deleted.
   */
  deleteFinishedTasks(finishedBefore: number, limit: number): Promise<number>;
  /** Tasks left queued or running by a previous process. */
  unfinishedTasks(): Promise<TaskRecord[]>;

  getSession(id: string): Promise<SessionRecord | undefined>;
  /** Appends messages, creating the session for `tenantId` if needed; batched with other writes. */
  appendMessages(sessionId: string, tenantId: string, messages: NewMessage[]): Promise<void>;
  /**
   * The newest messages that fit both limits, oldest first, never starting inside a tool exchange.
   * After a compaction, the window is the summary (a system message) and the messages after it.
   * The returned messages may be shared with the store's cache: callers must not mutate them.
   */
  sessionWindow(sessionId: string, maxMessages: number, maxTokens: number): Promise<ChatMessage[]>;
  listMessages(sessionId: string, afterSeq: number, limit: number): Promise<Page<StoredMessage>>;
  /**
   * Stores a compaction summary as a message and makes the window start from it, unless another
   * compaction moved `summary_through` since it was read (then false, nothing written).
   */
  saveSummary(sessionId: string, summary: SessionSummary): Promise<boolean>;
  /** Deletes a session and its messages; false when there was none. */
  deleteSession(id: string): Promise<boolean>;
  /** Deletes up to `limit` sessions (with their messages) last updated before `idleBefore`. */
  deleteIdleSessions(idleBefore: number, limit: number): Promise<number>;

  /** Adds a finished task's usage to its session's totals (batched with other writes). */
  addSessionUsage(sessionId: string, tokens: number, usd: number): void;

  createApiKey(key: ApiKeyRecord): Promise<void>;
  findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(tenantId?: string): Promise<ApiKeyRecord[]>;
  /** Marks a key revoked; false when no such active key exists. */
  revokeApiKey(id: string): Promise<boolean>;
  countActiveApiKeys(): Promise<number>;

  /** Writes everything pending. */
  flush(): Promise<void>;
  /** True when the store can serve requests. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
