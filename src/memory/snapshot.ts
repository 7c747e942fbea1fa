import type { MemoryRecord, MemorySnapshot } from './types.js';

/** A record as the history stores it (`old`/`new`): the JSON of its changeable fields. */
export function snapshotJson(record: MemoryRecord): string {
  const value: MemorySnapshot = {
    user_id: record.user_id,
    agent_id: record.agent_id,
    session_id: record.session_id,
    text: record.text,
    metadata: record.metadata,
    tags: record.tags,
    importance: record.importance,
    updated_at: record.updated_at,
    expires_at: record.expires_at,
  };
  return JSON.stringify(value);
}
