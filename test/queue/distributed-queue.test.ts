import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { bullPriority, DistributedTaskQueue, FAIR_ROUNDS, TaskEventStreams } from '../../src/queue/index.js';
import { dropPrefix, SHARED_REDIS_URL, testPrefix } from '../helpers/redis.js';

const prefix = testPrefix();
const clients: Redis[] = [];
function client(): Redis {
  const redis = new Redis(SHARED_REDIS_URL, { maxRetriesPerRequest: 1 });
  clients.push(redis);
  return redis;
}
after(async () => {
  for (const redis of clients) redis.disconnect();
  await dropPrefix(SHARED_REDIS_URL, prefix);
});

describe('bullPriority', () => {
  it('orders by agentd priority first, then by tenant round', () => {
    assert.ok(bullPriority(10, FAIR_ROUNDS - 1) < bullPriority(9, 0), 'a higher priority always goes first');
    assert.ok(bullPriority(0, 0) < bullPriority(0, 1), "a tenant's first waiting task before its second");
    assert.equal(bullPriority(0, FAIR_ROUNDS + 50), bullPriority(0, FAIR_ROUNDS - 1), 'rounds saturate');
    assert.equal(bullPriority(1000, 0), 1, 'the top priority maps to BullMQ 1');
    assert.ok(bullPriority(-1000, FAIR_ROUNDS - 1) <= 2_097_151, 'within BullMQ range');
    assert.equal(bullPriority(5000, 0), 1, 'clamped');
  });
});

describe('DistributedTaskQueue', () => {
  it("runs a second tenant's task before a first tenant's earlier burst, and priorities first", async () => {
    const queue = new DistributedTaskQueue(
      {
        url: SHARED_REDIS_URL,
        prefix,
        name: 'fair',
        workerConcurrency: 1,
        lockDurationMs: 5000,
        stalledIntervalMs: 5000,
        maxStalledCount: 1,
      },
      client(),
    );
    for (let i = 0; i < 6; i++) await queue.add({ id: `a${i}`, tenant: 'a', priority: 0, weight: 1 });
    await queue.add({ id: 'b0', tenant: 'b', priority: 0, weight: 1 });
    await queue.add({ id: 'b1', tenant: 'b', priority: 0, weight: 1 });
    await queue.add({ id: 'urgent', tenant: 'a', priority: 5, weight: 1 });
    assert.equal(await queue.waiting(), 9);
    assert.equal(await queue.remove('a5'), true, 'a waiting job can be taken out');
    const order: string[] = [];
    const done = new Promise<void>((resolve) => {
      queue.start(
        async ({ id, redelivered }) => {
          assert.equal(redelivered, 0);
          order.push(id);
          if (order.length === 8) resolve();
        },
        () => {},
      );
    });
    await done;
    await queue.close();
    assert.deepEqual(order, ['urgent', 'a0', 'b0', 'a1', 'b1', 'a2', 'a3', 'a4']);
  });
});

describe('TaskEventStreams', () => {
  it('merges deltas of one turn, resumes after an id, and follows live entries', async () => {
    const streams = new TaskEventStreams(client(), client(), { prefix, maxLen: 100, ttlMs: 60_000 });
    const event = (seq: number, type: string, data: Record<string, unknown>) => ({
      attempt: 1,
      seq,
      type,
      data,
      at: seq,
    });
    streams.append('t1', event(1, 'task.queued', {}));
    streams.append('t1', event(2, 'task.started', {}));
    streams.append('t1', event(3, 'llm.delta', { text: 'He' }));
    streams.append('t1', event(4, 'llm.delta', { text: 'llo' }));
    await streams.flush();
    const all = await streams.read('t1', { attempt: 1, seq: 0 });
    assert.deepEqual(
      all.events.map((e) => [e.seq, e.type, e.data.text]),
      [
        [1, 'task.queued', undefined],
        [2, 'task.started', undefined],
        [4, 'llm.delta', 'Hello'],
      ],
    );
    assert.equal(all.gap, false);
    const rest = await streams.read('t1', { attempt: 1, seq: 2 });
    assert.deepEqual(
      rest.events.map((e) => e.seq),
      [4],
    );
    const live: number[] = [];
    const got = new Promise<void>((resolve) => {
      streams.follow('t1', rest.position, (e) => {
        live.push(e.seq);
        if (e.type === 'task.completed') resolve();
      });
    });
    streams.append('t1', event(5, 'task.completed', { status: 'succeeded' }));
    await streams.flush();
    await got;
    assert.deepEqual(live, [5]);
    // A writer of an older run is refused: ids only go forward.
    streams.append('t1', event(3, 'llm.delta', { text: 'late' }));
    await streams.flush();
    assert.equal(streams.rejected, 1);
    // A position of an earlier run replays the newest run from its start.
    streams.append('t1', { ...event(1, 'task.queued', { recovered: true }), attempt: 2 });
    await streams.flush();
    const restarted = await streams.read('t1', { attempt: 1, seq: 5 });
    assert.deepEqual(
      restarted.events.map((e) => `${e.attempt}-${e.seq}`),
      ['2-1'],
    );
    assert.equal((await streams.read('missing', { attempt: 1, seq: 0 })).exists, false);
    assert.ok((await client().pttl(streams.key('t1'))) > 0, 'the stream expires');
    await streams.close();
  });
});
