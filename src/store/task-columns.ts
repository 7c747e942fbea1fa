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
  // Columns that change after creation (updateValues writes these, in this order).
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
