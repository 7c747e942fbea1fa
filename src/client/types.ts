/**
 * The HTTP API's wire types, as a client sees them. They mirror the server's schemas
 * (`GET /openapi.json`) and are declared here so that `agentd/client` loads nothing of the server
 * (the event types are imported as types only, so the list cannot fall behind the runtime's).
 */
import type { TaskEventType as RuntimeTaskEventType } from '../agent/events.js';

export type TaskStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface ApiErrorBody {
  code: string;
  message: string;
  retryable: boolean;
  retry_after_ms?: number;
  details?: Record<string, unknown>;
}

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
}

export interface TaskJson {
  id: string;
  object: 'task';
  agent: string;
  status: TaskStatus;
  input: string;
  result: string | null;
  partial: boolean;
  error: ApiErrorBody | null;
  model: string | null;
  usage: Usage;
  cost_usd: number;
  iterations: number;
  tool_calls: number;
  session_id: string | null;
  user_id: string | null;
  metadata: Record<string, unknown> | null;
  attempt: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/** Fields shared by task creation and synchronous runs. */
export interface TaskOptions {
  input: string;
  session_id?: string;
  user_id?: string;
  metadata?: Record<string, unknown>;
  model?: string;
  tier?: 'small' | 'medium' | 'large';
  mode?: 'simple' | 'standard' | 'complex' | 'research';
  tools?: string[];
  timeout_ms?: number;
  cache?: boolean;
  deadline_ms?: number;
}

export interface CreateTaskRequest extends TaskOptions {
  agent: string;
  priority?: number;
  /** true, or milliseconds: wait for the result before answering. */
  wait?: boolean | number;
}

export interface ListTasksQuery {
  session_id?: string;
  status?: TaskStatus;
  agent?: string;
  limit?: number;
  cursor?: string;
}

export interface Page<T> {
  object: 'list';
  data: T[];
  next_cursor: string | null;
}

export interface AgentJson {
  name: string;
  description: string;
  model: string | null;
  tools: string[];
  max_iterations: number;
}

export interface MessageJson {
  seq: number;
  /** `summary`: a compaction summary of the messages before it (which stay listed). */
  kind: 'message' | 'summary';
  role: string;
  content: string | null;
  tool_calls?: Record<string, unknown>[];
  tool_call_id?: string;
  task_id: string | null;
  created_at: string;
}

export interface HealthJson {
  status: string;
  version: string;
  uptime_seconds: number;
  active_tasks: number;
  queued_tasks: number;
  total_tasks: number;
  store: string;
  provider: string;
}

/** What the server's task stream carries: the task's own events, and `stream.gap` when older ones were evicted. */
export type TaskEventType = RuntimeTaskEventType | 'stream.gap';

/** One event of a task's stream; `id` is what `Last-Event-ID` resumes after. */
export interface TaskEvent {
  id: string;
  type: TaskEventType;
  data: Record<string, unknown>;
}
