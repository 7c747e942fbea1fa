import type { Config } from '../config/index.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

/** Opens the store the configuration names. */
export function openStore(config: Config): Store {
  return new SqliteStore({ path: config.storage.path, flushIntervalMs: config.storage.flush_interval_ms });
}
