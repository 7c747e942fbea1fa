/** SQLite rows of tasks and API keys, to and from their records. */
import type { ApiKeyRecord, TaskRecord } from './types.js';

export interface TaskRow {
  id: string;
  agent: string;
  tenant_id: string;
  user_id: string | null;
  session_id: string | null;
  status: TaskRecord['status'];
  input: string;
  result: string | null;
  partial: number;
  error: string | null;
  model: string | null;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  iterations: number;
  tool_calls: number;
  idempotency_key: string | null;
  metadata: string | null;
  options: string;
  attempt: number;
  event_seq: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export type SqlValue = string | number | null;

/** TASK_COLUMNS order: the fixed columns, then the mutable ones (one array, no copies). */
export function insertValues(task: TaskRecord): SqlValue[] {
  return pushMutable(task, [
    task.id,
    task.agent,
    task.tenant_id,
    task.user_id,
    task.session_id,
    task.idempotency_key,
    task.input,
    task.metadata === null ? null : JSON.stringify(task.metadata),
    JSON.stringify(task.options),
    task.created_at,
  ]);
}

/** The mutable columns in MUTABLE_COLUMNS order, then the id for the WHERE clause. */
export function updateValues(task: TaskRecord): SqlValue[] {
  const values = pushMutable(task, []);
  values.push(task.id);
  return values;
}

/** Appends the mutable columns, in MUTABLE_COLUMNS order. */
function pushMutable(task: TaskRecord, out: SqlValue[]): SqlValue[] {
  out.push(
    task.status,
    task.result,
    task.partial ? 1 : 0,
    task.error === null ? null : JSON.stringify(task.error),
    task.model,
    task.usage.input_tokens,
    task.usage.output_tokens,
    task.cost_usd,
    task.iterations,
    task.tool_calls,
    task.attempt,
    task.event_seq,
    task.started_at,
    task.finished_at,
  );
  return out;
}

export interface KeyRow extends Omit<ApiKeyRecord, 'agents' | 'limits'> {
  agents: string | null;
  limits: string | null;
}

export function keyFromRow(row: KeyRow): ApiKeyRecord {
  return {
    ...row,
    agents: row.agents === null ? null : (JSON.parse(row.agents) as string[]),
    limits: row.limits === null ? null : (JSON.parse(row.limits) as Record<string, number>),
  };
}

export function fromRow(row: TaskRow): TaskRecord {
  return {
    id: row.id,
    agent: row.agent,
    tenant_id: row.tenant_id,
    user_id: row.user_id,
    session_id: row.session_id,
    status: row.status,
    input: row.input,
    result: row.result,
    partial: row.partial === 1,
    error: row.error === null ? null : JSON.parse(row.error),
    model: row.model,
    usage: { input_tokens: row.input_tokens, output_tokens: row.output_tokens },
    cost_usd: row.cost_usd,
    iterations: row.iterations,
    tool_calls: row.tool_calls,
    idempotency_key: row.idempotency_key,
    metadata: row.metadata === null ? null : JSON.parse(row.metadata),
    options: JSON.parse(row.options),
    attempt: row.attempt,
    event_seq: row.event_seq,
    created_at: row.created_at,
    started_at: row.started_at,
    finished_at: row.finished_at,
  };
}
