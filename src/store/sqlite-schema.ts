/** The SQLite store's schema. */

/** Schema migrations, applied in order to bring a file from `user_version` up to date. */
export const MIGRATIONS: string[] = [
  `
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY,
  agent TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  user_id TEXT,
  session_id TEXT,
  status TEXT NOT NULL,
  input TEXT NOT NULL,
  result TEXT,
  partial INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  model TEXT,
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  cost_usd REAL NOT NULL DEFAULT 0,
  iterations INTEGER NOT NULL DEFAULT 0,
  tool_calls INTEGER NOT NULL DEFAULT 0,
  idempotency_key TEXT,
  metadata TEXT,
  options TEXT NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 1,
  event_seq INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER
);
CREATE INDEX IF NOT EXISTS tasks_tenant_created ON tasks (tenant_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS tasks_session_created ON tasks (session_id, created_at DESC, id DESC) WHERE session_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS tasks_idempotency ON tasks (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_unfinished ON tasks (status) WHERE status IN ('queued', 'running');

CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  message_count INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS messages (
  session_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  message TEXT NOT NULL,
  role TEXT NOT NULL,
  tokens INTEGER NOT NULL,
  task_id TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
`,
  `
ALTER TABLE sessions ADD COLUMN tokens_used INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN usd_used REAL NOT NULL DEFAULT 0;
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  prefix TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  tenant_id TEXT NOT NULL,
  user_id TEXT,
  name TEXT,
  agents TEXT,
  limits TEXT,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
`,
  `
ALTER TABLE sessions ADD COLUMN first_seq INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sessions ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN window_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN summary_through INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN summary TEXT;
ALTER TABLE sessions ADD COLUMN summary_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET bytes = length(CAST(message AS BLOB));
UPDATE sessions SET
  bytes = (SELECT coalesce(sum(bytes), 0) FROM messages WHERE session_id = sessions.id),
  window_tokens = (SELECT coalesce(sum(tokens), 0) FROM messages WHERE session_id = sessions.id);
CREATE INDEX sessions_idle ON sessions (updated_at);
`,
];
