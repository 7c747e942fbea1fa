import pg from 'pg';
import { ConfigError } from '../errors.js';

export interface PostgresPoolOptions {
  /** `postgres://user@host:port/database`. */
  url: string;
  /** Schema every connection works in (default `public`). */
  schema?: string | undefined;
  poolSize?: number | undefined;
  types: pg.CustomTypesConfig;
}

/**
 * A connection pool whose connections work in one schema, checked to be a plain identifier
 * (it is spliced into the connection options and DDL).
 */
export function openPostgresPool(options: PostgresPoolOptions): { pool: pg.Pool; schema: string } {
  const schema = options.schema ?? 'public';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new ConfigError(
      `storage.schema must be a lower-case SQL identifier (letters, digits, _), got "${schema}"`,
    );
  }
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    options: `-c search_path=${schema}`,
    types: options.types,
  });
  // An idle connection that drops (a Postgres restart) must not crash the process.
  pool.on('error', () => {});
  return { pool, schema };
}
