import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { MultiLevelCache } from '../../src/cache/index.js';
import { AgentdMetrics } from '../../src/observability/index.js';
import { dropPrefix, SHARED_REDIS_URL, testPrefix } from '../helpers/redis.js';

function cache(overrides: Partial<ConstructorParameters<typeof MultiLevelCache>[0]> = {}) {
  return new MultiLevelCache<string>({
    name: 't',
    maxEntries: 100,
    maxBytes: 1_000_000,
    defaultTtlMs: 60_000,
    negativeTtlMs: 50,
    ...overrides,
  });
}

describe('MultiLevelCache (L1)', () => {
  it('answers an L1 hit synchronously, and loads a miss once', async () => {
    const c = cache();
    let loads = 0;
    const load = async () => {
      loads++;
      return 'v';
    };
    assert.equal(await c.get('k', load), 'v');
    assert.equal(c.get('k', load), 'v', 'synchronous on a hit');
    assert.equal(loads, 1);
    assert.equal(c.peek('k'), 'v');
  });

  it('collapses 1,000 concurrent misses into one upstream call', async () => {
    const c = cache();
    let loads = 0;
    const load = () =>
      new Promise<string>((resolve) => {
        loads++;
        setTimeout(() => resolve('shared'), 20);
      });
    const results = await Promise.all(Array.from({ length: 1000 }, () => c.get('hot', load)));
    assert.equal(loads, 1);
    assert.ok(results.every((r) => r === 'shared'));
  });

  it('caches an absent result briefly, then asks again', async () => {
    const c = cache();
    let loads = 0;
    const load = async () => {
      loads++;
      return undefined;
    };
    assert.equal(await c.get('none', load), undefined);
    assert.equal(c.get('none', load), undefined, 'a negative hit, no load');
    assert.equal(loads, 1);
    await new Promise((resolve) => setTimeout(resolve, 80));
    await c.get('none', load);
    assert.equal(loads, 2, 'after the negative TTL the source is asked again');
  });

  it('does not cache a failed load', async () => {
    const c = cache();
    await assert.rejects(
      Promise.resolve(c.get('err', async () => Promise.reject(new Error('down')))),
      /down/,
    );
    assert.equal(await c.get('err', async () => 'recovered'), 'recovered');
  });

  it('invalidates by key and by tag, and honours per-entry TTLs', async () => {
    const c = cache();
    await c.set('a', '1', { tags: ['tenant:x'] });
    await c.set('b', '2', { tags: ['tenant:x', 'tool:y'] });
    await c.set('c', '3', { tags: ['tenant:z'], ttlMs: 500 });
    await c.delete('a');
    assert.equal(c.peek('a'), undefined);
    await c.invalidateTag('tenant:x');
    assert.equal(c.peek('b'), undefined);
    assert.equal(c.peek('c'), '3');
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.equal(c.peek('c'), undefined, 'expired');
  });

  it('stays within its entry and byte bounds', async () => {
    const byEntries = cache({ maxEntries: 10 });
    for (let i = 0; i < 50; i++) await byEntries.set(`k${i}`, 'v');
    assert.equal(byEntries.size, 10);
    const byBytes = cache({ maxBytes: 1000 });
    for (let i = 0; i < 50; i++) await byBytes.set(`k${i}`, 'x'.repeat(200));
    assert.ok(byBytes.size <= 5);
  });

  it('counts hits and misses per level', async () => {
    const metrics = new AgentdMetrics();
    const c = cache({ metrics });
    await c.get('k', async () => 'v');
    c.get('k', async () => 'v');
    c.get('k', async () => 'v');
    assert.equal(metrics.cacheRequests.with('t', 'l1', 'miss').value, 1);
    assert.equal(metrics.cacheRequests.with('t', 'l1', 'hit').value, 2);
  });
});

describe('MultiLevelCache (L2 on Redis, two processes)', () => {
  const prefix = testPrefix();
  const clients: Redis[] = [];
  after(async () => {
    for (const client of clients) client.disconnect();
    await dropPrefix(SHARED_REDIS_URL, prefix);
  });

  function node(metrics?: AgentdMetrics) {
    const client = new Redis(SHARED_REDIS_URL);
    const subscriber = new Redis(SHARED_REDIS_URL);
    clients.push(client, subscriber);
    return cache({ redis: { client, subscriber, prefix }, metrics });
  }

  it('shares values, and invalidations reach the other process', async () => {
    const metricsB = new AgentdMetrics();
    const a = node();
    const b = node(metricsB);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await a.set('greeting', 'hello', { tags: ['tenant:acme'] });
    let loads = 0;
    assert.equal(await b.get('greeting', async () => `loaded ${++loads}`), 'hello');
    assert.equal(loads, 0, 'an L2 hit');
    assert.equal(metricsB.cacheRequests.with('t', 'l2', 'hit').value, 1);
    assert.equal(b.peek('greeting'), 'hello', "now in B's L1 too");
    await a.delete('greeting');
    for (let i = 0; i < 50 && b.peek('greeting') !== undefined; i++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(b.peek('greeting'), undefined, "A's delete dropped B's L1 copy");
    await a.set('x', '1', { tags: ['tenant:acme'] });
    assert.equal(await b.get('x', async () => 'miss'), '1');
    await a.invalidateTag('tenant:acme');
    for (let i = 0; i < 50 && b.peek('x') !== undefined; i++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(b.peek('x'), undefined);
    assert.equal(await b.get('x', async () => 'fresh'), 'fresh', 'gone from L2 as well');
  });
});
