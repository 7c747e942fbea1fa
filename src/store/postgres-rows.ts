/** Postgres tables of the store and the mapping between task records and rows. */
import pg from 'pg';
import { MUTABLE_COLUMNS, TASK_COLUMNS } from './task-columns.js';
import type { TaskRecord } from './types.js';

/** Schema migrations, applied in order; `agentd_migrations` records how many ran. */
export const MIGRATIONS: string[] = [
  `
CREATE TABLE tasks (
  id TEXT PRIMARY KEY,
  agent TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  user_id TEXT,
  session_id TEXT,
  idempotency_key TEXT,
  input TEXT NOT NULL,
  metadata JSONB,
  options JSONB NOT NULL,
  created_at BIGINT NOT NULL,
  status TEXT NOT NULL,
  result TEXT,
  partial BOOLEAN NOT NULL DEFAULT false,
  error JSONB,
  model TEXT,
  input_tokens BIGINT NOT NULL DEFAULT 0,
  output_tokens BIGINT NOT NULL DEFAULT 0,
  cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
  iterations INTEGER NOT NULL DEFAULT 0,
  tool_calls INTEGER NOT NULL DEFAULT 0,
  attempt INTEGER NOT NULL DEFAULT 1,
  event_seq INTEGER NOT NULL DEFAULT 0,
  started_at BIGINT,
  finished_at BIGINT
);
CREATE INDEX tasks_tenant_created ON tasks (tenant_id, created_at DESC, id DESC);
CREATE INDEX tasks_session_created ON tasks (session_id, created_at DESC, id DESC) WHERE session_id IS NOT NULL;
CREATE UNIQUE INDEX tasks_idempotency ON tasks (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_unfinished ON tasks (created_at) WHERE status IN ('queued', 'running');

CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  message_count INTEGER NOT NULL DEFAULT 0,
  tokens_used BIGINT NOT NULL DEFAULT 0,
  usd_used DOUBLE PRECISION NOT NULL DEFAULT 0
);

CREATE TABLE messages (
  session_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  message JSONB NOT NULL,
  role TEXT NOT NULL,
  tokens INTEGER NOT NULL,
  task_id TEXT,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (session_id, seq)
);

CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  prefix TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  tenant_id TEXT NOT NULL,
  user_id TEXT,
  name TEXT,
  agents JSONB,
  limits JSONB,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT
);
`,
  `
ALTER TABLE sessions
  ADD COLUMN first_seq INTEGER NOT NULL DEFAULT 1,
  ADD COLUMN bytes BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN window_tokens BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN summary_through INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN summary TEXT,
  ADD COLUMN summary_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages
  ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN kind SMALLINT NOT NULL DEFAULT 0;
UPDATE messages SET bytes = octet_length(message::text);
UPDATE sessions SET
  bytes = coalesce((SELECT sum(bytes) FROM messages WHERE session_id = sessions.id), 0),
  window_tokens = coalesce((SELECT sum(tokens) FROM messages WHERE session_id = sessions.id), 0);
CREATE INDEX sessions_idle ON sessions (updated_at);
`,
  // Task retention (tasks.retention_ms) deletes the oldest finished tasks first.
  `CREATE INDEX tasks_created ON tasks (created_at);`,
];

/** Rows per multi-row statement: well under Postgres' 65,535 bind parameters. */
export const ROWS_PER_STATEMENT = 1000;

/**
 * One statement inserts new tasks and updates known ones. A finished row is never written again,
 * and a row is never taken back to an earlier attempt: a node that lost a task (its lock expired
 * while it was stalled) cannot overwrite the state of the node that re-ran it.
 */
export function upsertSql(rows: number): string {
  const width = TASK_COLUMNS.length;
  const values: string[] = [];
  for (let r = 0; r < rows; r++) {
    const params: string[] = [];
    for (let c = 1; c <= width; c++) params.push(`$${r * width + c}`);
    values.push(`(${params.join(', ')})`);
  }
  return `INSERT INTO tasks (${TASK_COLUMNS.join(', ')}) VALUES ${values.join(', ')}
ON CONFLICT (id) DO UPDATE SET ${MUTABLE_COLUMNS.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}
WHERE tasks.status NOT IN ('succeeded', 'failed', 'cancelled') AND tasks.attempt <= EXCLUDED.attempt`;
}

export interface TaskRow {
  id: string;
  agent: string;
  tenant_id: string;
  user_id: string | null;
  session_id: string | null;
  idempotency_key: string | null;
  input: string;
  metadata: Record<string, unknown> | null;
  options: TaskRecord['options'];
  created_at: number;
  status: TaskRecord['status'];
  result: string | null;
  partial: boolean;
  error: TaskRecord['error'];
  model: string | null;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  iterations: number;
  tool_calls: number;
  attempt: number;
  event_seq: number;
  started_at: number | null;
  finished_at: number | null;
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
    partial: row.partial,
    error: row.error,
    model: row.model,
    usage: { input_tokens: row.input_tokens, output_tokens: row.output_tokens },
    cost_usd: row.cost_usd,
    iterations: row.iterations,
    tool_calls: row.tool_calls,
    idempotency_key: row.idempotency_key,
    metadata: row.metadata,
    options: row.options,
    attempt: row.attempt,
    event_seq: row.event_seq,
    created_at: row.created_at,
    started_at: row.started_at,
    finished_at: row.finished_at,
  };
}

/** BIGINT columns hold epoch milliseconds and counters: well inside a double's exact range. */
export const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === pg.types.builtins.INT8) return Number;
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as pg.CustomTypesConfig;
