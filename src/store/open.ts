import type { Config } from '../config/index.js';
import { PostgresStore } from './postgres.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

/** True for a `postgres://` or `postgresql://` URL. */
export function isPostgresUrl(url: string | undefined): url is string {
  return url !== undefined && /^postgres(?:ql)?:\/\//i.test(url);
}

/** Opens the store the configuration names: Postgres when `storage.url` is set, else SQLite. */
export async function openStore(config: Config): Promise<Store> {
  const storage = config.storage;
  const sessionCaps = { maxMessages: config.sessions.max_messages, maxBytes: config.sessions.max_bytes };
  if (isPostgresUrl(storage.url)) {
    return PostgresStore.open({
      url: storage.url,
      schema: storage.schema,
      poolSize: storage.pool_size,
      flushIntervalMs: storage.flush_interval_ms,
      sessionCaps,
    });
  }
  return new SqliteStore({ path: storage.path, flushIntervalMs: storage.flush_interval_ms, sessionCaps });
}
