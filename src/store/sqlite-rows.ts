/** SQLite rows of tasks and API keys, to and from their records. */
import { type ColumnValue, pushFixedValues, pushMutableValues } from './task-columns.js';
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

/** TASK_COLUMNS order: the fixed columns, then the mutable ones (one array, no copies). */
export function insertValues(task: TaskRecord): ColumnValue[] {
  return pushMutableValues(task, pushFixedValues(task, []), 'integer');
}

/** The mutable columns in MUTABLE_COLUMNS order, then the id for the WHERE clause. */
export function updateValues(task: TaskRecord): ColumnValue[] {
  const values = pushMutableValues(task, [], 'integer');
  values.push(task.id);
  return values;
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
