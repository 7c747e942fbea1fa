import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdaptiveConcurrency, FairScheduler, PriorityQueue } from '../../src/queue/index.js';

interface Job {
  name: string;
  tenant: string;
  priority?: number;
  deadline?: number;
}

/** A scheduler whose jobs run until released by name; records start order and expirations. */
function harness(options: { maxConcurrency: number; maxQueue: number; weights?: Record<string, number> }) {
  const started: string[] = [];
  const expired: string[] = [];
  const release = new Map<string, () => void>();
  const scheduler = new FairScheduler<Job>(
    {
      maxConcurrency: options.maxConcurrency,
      maxQueue: options.maxQueue,
      weight: (t) => options.weights?.[t] ?? 1,
    },
    { tenant: (j) => j.tenant, priority: (j) => j.priority ?? 0, deadline: (j) => j.deadline },
    (job) => {
      started.push(job.name);
      return new Promise<void>((resolve) => release.set(job.name, resolve));
    },
    (job) => expired.push(job.name),
  );
  const finish = async (name: string) => {
    release.get(name)!();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { scheduler, started, expired, finish };
}

describe('PriorityQueue', () => {
  it('pops by priority, then first in first out', () => {
    const q = new PriorityQueue<string>();
    q.push('low1', 0);
    q.push('high', 5);
    q.push('low2', 0);
    q.push('mid', 1);
    assert.equal(q.peekPriority(), 5);
    assert.ok(q.remove('mid'));
    assert.deepEqual([q.pop(), q.pop(), q.pop(), q.pop()], ['high', 'low1', 'low2', undefined]);
  });
});

describe('FairScheduler', () => {
  it('bounds concurrency and the queue, refusing past it with an estimated Retry-After', () => {
    const { scheduler, started } = harness({ maxConcurrency: 2, maxQueue: 2 });
    for (const name of ['a', 'b', 'c', 'd']) scheduler.submit({ name, tenant: 't' });
    assert.deepEqual(started, ['a', 'b']);
    assert.equal(scheduler.queued, 2);
    assert.equal(scheduler.hasRoom(), false);
    assert.throws(
      () => scheduler.submit({ name: 'e', tenant: 't' }),
      (err: { code: string; retryAfterMs: number }) => {
        assert.equal(err.code, 'AGENTD_QUEUE_FULL');
        assert.ok(err.retryAfterMs > 0);
        return true;
      },
    );
    scheduler.submit({ name: 'forced', tenant: 't' }, { force: true });
    assert.equal(scheduler.queued, 3);
  });

  it("does not let one tenant's burst starve another", async () => {
    const { scheduler, started, finish } = harness({ maxConcurrency: 1, maxQueue: 1000 });
    for (let i = 0; i < 50; i++) scheduler.submit({ name: `a${i}`, tenant: 'a' });
    for (let i = 0; i < 5; i++) scheduler.submit({ name: `b${i}`, tenant: 'b' });
    for (let i = 0; i < 11; i++) await finish(started.at(-1)!);
    assert.deepEqual(started.slice(0, 12), [
      'a0',
      'a1',
      'b0',
      'a2',
      'b1',
      'a3',
      'b2',
      'a4',
      'b3',
      'a5',
      'b4',
      'a6',
    ]);
  });

  it('shares starts in proportion to tenant weights', async () => {
    const { scheduler, started, finish } = harness({
      maxConcurrency: 1,
      maxQueue: 1000,
      weights: { big: 3, small: 1 },
    });
    scheduler.submit({ name: 'warm', tenant: 'other' });
    for (let i = 0; i < 40; i++) {
      scheduler.submit({ name: `big${i}`, tenant: 'big' });
      scheduler.submit({ name: `small${i}`, tenant: 'small' });
    }
    for (let i = 0; i < 40; i++) await finish(started.at(-1)!);
    const window = started.slice(1, 41);
    const big = window.filter((n) => n.startsWith('big')).length;
    assert.equal(big, 30, `expected 3:1, got ${big}:${40 - big}`);
  });

  it('starts higher priorities first, across tenants', async () => {
    const { scheduler, started, finish } = harness({ maxConcurrency: 1, maxQueue: 100 });
    scheduler.submit({ name: 'running', tenant: 'a' });
    scheduler.submit({ name: 'a-low', tenant: 'a', priority: 0 });
    scheduler.submit({ name: 'b-high', tenant: 'b', priority: 10 });
    scheduler.submit({ name: 'a-high', tenant: 'a', priority: 10 });
    for (let i = 0; i < 3; i++) await finish(started.at(-1)!);
    assert.deepEqual(started, ['running', 'b-high', 'a-high', 'a-low']);
  });

  it('fails a queued job at its start deadline instead of running it late', async () => {
    const { scheduler, started, expired, finish } = harness({ maxConcurrency: 1, maxQueue: 10 });
    scheduler.submit({ name: 'busy', tenant: 't' });
    scheduler.submit({ name: 'urgent', tenant: 't', deadline: Date.now() + 30 });
    scheduler.submit({ name: 'patient', tenant: 't' });
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.deepEqual(expired, ['urgent']);
    assert.equal(scheduler.queued, 1);
    await finish('busy');
    assert.deepEqual(started, ['busy', 'patient']);
  });

  it('removes a queued job, and starts queued jobs when the limit rises', async () => {
    const { scheduler, started } = harness({ maxConcurrency: 4, maxQueue: 10 });
    scheduler.limit = 1;
    for (const name of ['a', 'b', 'c']) scheduler.submit({ name, tenant: 't' });
    assert.ok(scheduler.remove({ name: 'x', tenant: 't' }) === false);
    scheduler.limit = 3;
    assert.deepEqual(started, ['a', 'b', 'c']);
    scheduler.limit = 100;
    assert.equal(scheduler.limit, 4, 'never above the configured maximum');
  });
});

describe('AdaptiveConcurrency', () => {
  it('cuts the limit when the event loop lags and raises it back when busy and healthy', () => {
    const target = { limit: 100, active: 100 };
    const adaptive = new AdaptiveConcurrency(target, {
      targetLagMs: 50,
      minConcurrency: 10,
      maxConcurrency: 100,
      intervalMs: 60_000,
    });
    try {
      adaptive.adjust(200);
      assert.equal(target.limit, 80);
      for (let i = 0; i < 20; i++) adaptive.adjust(500);
      assert.equal(target.limit, 10, 'never below the minimum');
      target.active = 10;
      adaptive.adjust(5);
      assert.equal(target.limit, 11);
      target.active = 0;
      adaptive.adjust(5);
      assert.equal(target.limit, 11, 'an idle scheduler is not widened');
    } finally {
      adaptive.close();
    }
  });
});
