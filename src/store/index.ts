export { isPostgresUrl, openStore } from './open.js';
export { PostgresStore, type PostgresStoreOptions } from './postgres.js';
export { SessionTailCache } from './session-tail.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
export { type DeleteBatch, Sweeper } from './sweeper.js';
export {
  type ApiKeyRecord,
  type MessageKind,
  type NewMessage,
  type Page,
  type SessionCaps,
  type SessionRecord,
  type SessionSummary,
  type Store,
  type StoredMessage,
  type TaskOptions,
  type TaskQuery,
  type TaskRecord,
  type TaskStatus,
  TERMINAL_STATUSES,
} from './types.js';
export { decodeCursor, encodeCursor, summaryMessage, trimWindow, type WindowRow } from './window.js';
