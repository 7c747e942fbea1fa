import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalScheduler, PriorityQueue } from '../../src/queue/index.js';

describe('PriorityQueue', () => {
  it('pops by priority, then first in first out', () => {
    const q = new PriorityQueue<string>();
    q.push('low1', 0);
    q.push('high', 5);
    q.push('low2', 0);
    q.push('mid', 1);
    q.push('neg', -3);
    assert.ok(q.remove('mid'));
    assert.ok(!q.remove('absent'));
    assert.deepEqual(
      [q.pop(), q.pop(), q.pop(), q.pop(), q.pop()],
      ['high', 'low1', 'low2', 'neg', undefined],
    );
  });
});

describe('LocalScheduler', () => {
  it('runs at most maxConcurrency jobs, queues the rest by priority, and refuses past the bound', async () => {
    const started: string[] = [];
    const release = new Map<string, () => void>();
    const scheduler = new LocalScheduler<string>({ maxConcurrency: 2, maxQueue: 2 }, (job) => {
      started.push(job);
      return new Promise<void>((resolve) => release.set(job, resolve));
    });
    scheduler.submit('a');
    scheduler.submit('b');
    scheduler.submit('c', 0);
    scheduler.submit('d', 9);
    assert.throws(
      () => scheduler.submit('e'),
      (err: { code: string; status: number; retryAfterMs: number }) => {
        assert.equal(err.code, 'AGENTD_QUEUE_FULL');
        assert.equal(err.status, 503);
        assert.ok(err.retryAfterMs > 0);
        return true;
      },
    );
    scheduler.submit('forced', 0, { force: true });
    assert.deepEqual([scheduler.active, scheduler.queued], [2, 3]);
    release.get('a')!();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(started, ['a', 'b', 'd'], 'the higher priority job starts first');
    assert.ok(scheduler.remove('c'));
    for (const job of ['b', 'd', 'forced']) {
      release.get(job)?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await scheduler.whenIdle();
    assert.deepEqual(started, ['a', 'b', 'd', 'forced']);
  });

  it('stops starting queued jobs when paused', async () => {
    let runs = 0;
    const scheduler = new LocalScheduler<number>({ maxConcurrency: 1, maxQueue: 10 }, async () => {
      runs++;
    });
    scheduler.pause();
    scheduler.submit(1);
    assert.equal(runs, 0);
    assert.equal(scheduler.queued, 1);
  });
});
