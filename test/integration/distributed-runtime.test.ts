import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TaskEvent } from '../../src/agent/index.js';
import { MockLlmServer } from '../../src/llm/index.js';
import { createLogger } from '../../src/observability/index.js';
import { Runtime } from '../../src/runtime/index.js';
import { tempDir } from '../helpers/agentd.js';
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../helpers/postgres.js';
import { dropPrefix, SHARED_REDIS_URL, testPrefix } from '../helpers/redis.js';

describe('distributed runtime (one node in this process)', () => {
  let mock: MockLlmServer;
  const prefix = testPrefix();
  const schema = uniqueSchema('agentd_dist');
  const dir = tempDir();
  const config = (extra: Record<string, unknown> = {}) => ({
    providers: { mock: { type: 'mock', base_url: mock.url } },
    models: { slow: { provider: 'mock', name: 'mock?tokens=20&interval_ms=20' } },
    tiers: { small: ['slow'], medium: ['slow'], large: ['slow'] },
    agents: { writer: { model: 'slow' } },
    redis: { url: SHARED_REDIS_URL, key_prefix: prefix },
    storage: { url: TEST_DATABASE_URL, schema },
    distributed: { enabled: true },
    ...extra,
  });
  const open = (extra?: Record<string, unknown>) =>
    Runtime.create({ config: config(extra), env: {}, logger: createLogger({ level: 'silent' }) });

  before(async () => {
    mock = await MockLlmServer.start();
  });
  after(async () => {
    await mock.close();
    await dropPrefix(SHARED_REDIS_URL, prefix);
    await dropSchema(schema);
    dir.remove();
  });

  it('refuses distributed mode without a shared store or without Redis', async () => {
    await assert.rejects(
      open({ storage: { path: `${dir.path}/one.db` } }),
      /distributed\.enabled needs a shared store/,
    );
    await assert.rejects(open({ redis: {} }), /distributed\.enabled needs redis\.url/);
  });

  it('queues a task that waits for a concurrency slot once the slot frees, and streams it from the start', async () => {
    const runtime = await open({ limits: { default_tenant: { concurrency: 1, max_queue: 5 } } });
    try {
      const first = await runtime.submit({ agent: 'writer', input: 'one', durable: true });
      const second = await runtime.submit({ agent: 'writer', input: 'two', durable: true });
      assert.equal(second.task.status, 'queued');
      const seen: TaskEvent[] = [];
      const stream = await runtime.events(second.task.id, 'default', { attempt: 1, seq: 0 }, (event) =>
        seen.push(event),
      );
      assert.ok(stream !== undefined);
      assert.equal(stream.finished, false, 'a task waiting for its slot can be followed');
      assert.deepEqual(
        stream.backlog.map((e) => e.type),
        ['task.queued'],
      );
      assert.equal(await first.task.wait(30_000), true);
      assert.equal(await second.task.wait(30_000), true);
      assert.equal(second.task.record.status, 'succeeded', JSON.stringify(second.task.record.error));
      const stored = await runtime.getTask(second.task.id, 'default');
      assert.equal(stored?.status, 'succeeded');
      const deadline = Date.now() + 10_000;
      while (seen[seen.length - 1]?.type !== 'task.completed' && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 20));
      stream.unsubscribe();
      assert.equal(seen[0]?.type, 'task.started');
      assert.equal(seen[seen.length - 1]?.type, 'task.completed');
      assert.deepEqual(
        seen.map((e) => e.seq),
        [...seen.map((e) => e.seq)].sort((a, b) => a - b),
      );
    } finally {
      await runtime.close({ drainMs: 0 });
    }
  });

  it('answers an idempotent replay with the same task, and cancels a queued task', async () => {
    const runtime = await open({ limits: { default_tenant: { concurrency: 1, max_queue: 5 } } });
    try {
      const first = await runtime.submit({
        agent: 'writer',
        input: 'a',
        idempotencyKey: 'k1',
        durable: true,
      });
      const replay = await runtime.submit({
        agent: 'writer',
        input: 'a',
        idempotencyKey: 'k1',
        durable: true,
      });
      assert.equal(replay.created, false);
      assert.equal(replay.task.id, first.task.id);
      const waiting = await runtime.submit({ agent: 'writer', input: 'b', durable: true });
      const cancelled = await runtime.cancel(waiting.task.id, 'default');
      assert.equal(cancelled?.status, 'cancelled');
      assert.equal(await first.task.wait(30_000), true);
      assert.equal(first.task.record.status, 'succeeded');
    } finally {
      await runtime.close({ drainMs: 0 });
    }
  });
});
