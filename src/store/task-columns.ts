import type { TaskRecord } from './types.js';

/** The task table's columns, in the order both stores write them. */
export const TASK_COLUMNS = [
  'id',
  'agent',
  'tenant_id',
  'user_id',
  'session_id',
  'idempotency_key',
  'input',
  'metadata',
  'options',
  'created_at',
  // Columns that change after creation (pushMutableValues writes these, in this order).
  'status',
  'result',
  'partial',
  'error',
  'model',
  'input_tokens',
  'output_tokens',
  'cost_usd',
  'iterations',
  'tool_calls',
  'attempt',
  'event_seq',
  'started_at',
  'finished_at',
] as const;
/** Columns that change after creation. */
export const MUTABLE_COLUMNS = TASK_COLUMNS.slice(TASK_COLUMNS.indexOf('status'));

/** A bound parameter of either store (SQLite has no booleans: it stores `partial` as 0/1). */
export type ColumnValue = string | number | boolean | null;

/** Appends the columns fixed at creation, in TASK_COLUMNS order. */
export function pushFixedValues(task: TaskRecord, out: ColumnValue[]): ColumnValue[] {
  out.push(
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
  );
  return out;
}

/** Appends the mutable columns, in MUTABLE_COLUMNS order; `booleans` says how the store keeps one. */
export function pushMutableValues(
  task: TaskRecord,
  out: ColumnValue[],
  booleans: 'boolean' | 'integer',
): ColumnValue[] {
  out.push(
    task.status,
    task.result,
    booleans === 'boolean' ? task.partial : task.partial ? 1 : 0,
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
