import { randomBytes } from 'node:crypto';
import { PostgresStore, type SessionCaps } from '../../src/store/index.js';

/** The local Postgres every integration test shares (override with TEST_DATABASE_URL). */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A schema name no other test run uses. */
export function uniqueSchema(prefix = 'agentd_test'): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

/** Opens a store on a fresh schema; `drop` removes the schema and closes the store. */
export async function openTestPostgres(
  options: { schema?: string; flushIntervalMs?: number; sessionCaps?: SessionCaps } = {},
): Promise<{ store: PostgresStore; schema: string; drop(): Promise<void> }> {
  const schema = options.schema ?? uniqueSchema();
  const store = await PostgresStore.open({
    url: TEST_DATABASE_URL,
    schema,
    flushIntervalMs: options.flushIntervalMs,
    sessionCaps: options.sessionCaps,
    poolSize: 4,
  });
  return {
    store,
    schema,
    async drop() {
      await dropSchema(schema);
      await store.close();
    },
  };
}

/** Drops a test schema through a short-lived connection. */
export async function dropSchema(schema: string): Promise<void> {
  const store = await PostgresStore.open({ url: TEST_DATABASE_URL, schema, poolSize: 1 });
  try {
    await store.dropSchema();
  } finally {
    await store.close();
  }
}
