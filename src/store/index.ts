export { isPostgresUrl, openStore } from './open.js';
export { PostgresStore, type PostgresStoreOptions } from './postgres.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
export {
  type ApiKeyRecord,
  type NewMessage,
  type Page,
  type SessionRecord,
  type Store,
  type StoredMessage,
  type TaskOptions,
  type TaskQuery,
  type TaskRecord,
  type TaskStatus,
  TERMINAL_STATUSES,
} from './types.js';
export { decodeCursor, encodeCursor, trimWindow } from './window.js';
