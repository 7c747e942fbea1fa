import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Task } from '../../src/agent/index.js';
import type { TaskRecord } from '../../src/store/index.js';

function record(): TaskRecord {
  return {
    id: 't1',
    agent: 'a',
    tenant_id: 'default',
    user_id: null,
    session_id: null,
    status: 'running',
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
    metadata: null,
    options: {},
    attempt: 1,
    event_seq: 0,
    created_at: 0,
    started_at: null,
    finished_at: null,
  };
}

describe('Task', () => {
  it('resolves every whenFinished caller with the finished record, also after the fact', async () => {
    const task = new Task(record(), 16);
    const early = [task.whenFinished(), task.whenFinished()];
    assert.equal(early[0], early[1], 'one promise for every caller');
    task.finish('succeeded', 'answer', null);
    for (const finished of await Promise.all(early)) {
      assert.equal(finished, task.record);
      assert.equal(finished.result, 'answer');
    }
    assert.equal((await task.whenFinished()).status, 'succeeded');
  });
});
