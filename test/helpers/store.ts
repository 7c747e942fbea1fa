import type { TaskRecord } from '../../src/store/index.js';

/** A queued task record of tenant `t1`, with `overrides` applied. */
export function task(id: string, overrides: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id,
    agent: 'a',
    tenant_id: 't1',
    user_id: null,
    session_id: null,
    status: 'queued',
    input: 'hi',
    result: null,
    partial: false,
    error: null,
    model: null,
    usage: { input_tokens: 0, output_tokens: 0 },
    cost_usd: 0,
    iterations: 0,
    tool_calls: 0,
    idempotency_key: null,
    metadata: { k: 'v' },
    options: { tier: 'small' },
    attempt: 1,
    event_seq: 0,
    created_at: 1000,
    started_at: null,
    finished_at: null,
    ...overrides,
  };
}
