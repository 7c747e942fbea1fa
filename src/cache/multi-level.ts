import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { AgentdMetrics, CounterSeries } from '../observability/index.js';

/** A negative result ("there is nothing"), cached briefly so a miss storm does not hit upstream. */
const ABSENT = Symbol('absent');
type Stored<V> = V | typeof ABSENT;

interface Entry<V> {
  value: Stored<V>;
  tags: readonly string[] | undefined;
}

export interface CacheOptions {
  /** Name used in metrics (`cache` label) and in Redis keys. */
  name: string;
  maxEntries: number;
  /** Bound on L1 memory, counting each entry's `size` (JSON length by default). */
  maxBytes: number;
  defaultTtlMs: number;
  /** TTL of a negative (absent) result. */
  negativeTtlMs: number;
  /** L2: a Redis client and the key prefix under which this cache lives. */
  redis?: { client: Redis; subscriber: Redis; prefix: string } | undefined;
  metrics?: AgentdMetrics | undefined;
}

export interface SetOptions {
  ttlMs?: number;
  tags?: readonly string[];
}

interface CacheCounters {
  l1Hit: CounterSeries;
  l1Miss: CounterSeries;
  l2Hit: CounterSeries;
  l2Miss: CounterSeries;
  negativeHit: CounterSeries;
}

/**
 * A two-level read-through cache: L1 in this process (lru-cache, bounded by entries and bytes,
 * per-entry TTL) and, when Redis is configured, L2 shared by every process. Concurrent misses
 * for one key make one upstream call (single-flight). Absent results are cached for a short TTL.
 * Entries can be invalidated by key or by tag; other processes drop their L1 copies through a
 * Redis channel. Values must be JSON-serialisable to reach L2.
 */
export class MultiLevelCache<V> {
  readonly name: string;
  readonly #l1: LRUCache<string, Entry<V>>;
  readonly #options: CacheOptions;
  readonly #inflight = new Map<string, Promise<V | undefined>>();
  readonly #tags = new Map<string, Set<string>>();
  readonly #counters: CacheCounters | undefined;
  readonly #origin = randomBytes(6).toString('hex');
  readonly #channel: string;

  constructor(options: CacheOptions) {
    this.name = options.name;
    this.#options = options;
    this.#l1 = new LRUCache<string, Entry<V>>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: (entry) =>
        entry.value === ABSENT ? 16 : Math.max(16, JSON.stringify(entry.value)?.length ?? 16),
      ttl: options.defaultTtlMs,
      dispose: (entry, key) => this.#untag(key, entry.tags),
    });
    const metrics = options.metrics;
    if (metrics !== undefined) {
      const with_ = (level: string, result: string) =>
        metrics.cacheRequests.with(options.name, level, result);
      this.#counters = {
        l1Hit: with_('l1', 'hit'),
        l1Miss: with_('l1', 'miss'),
        l2Hit: with_('l2', 'hit'),
        l2Miss: with_('l2', 'miss'),
        negativeHit: with_('l1', 'negative_hit'),
      };
    }
    this.#channel = `${options.redis?.prefix ?? ''}invalidate:${options.name}`;
    const redis = options.redis;
    if (redis !== undefined) {
      void redis.subscriber.subscribe(this.#channel).catch(() => {});
      redis.subscriber.on('message', (channel: string, message: string) => {
        if (channel !== this.#channel) return;
        const { origin, keys } = JSON.parse(message) as { origin: string; keys: string[] };
        if (origin === this.#origin) return;
        for (const key of keys) this.#l1.delete(key);
      });
    }
  }

  /** L1 only, synchronously: the value, ABSENT as undefined, or undefined on a miss. */
  peek(key: string): V | undefined {
    const entry = this.#l1.get(key);
    return entry === undefined || entry.value === ABSENT ? undefined : entry.value;
  }

  /**
   * The cached value, else `load()`'s (stored with `options`). An L1 hit answers synchronously;
   * concurrent misses share one load. `load` returning undefined means absent (cached briefly).
   */
  get(
    key: string,
    load: () => Promise<V | undefined>,
    options: SetOptions = {},
  ): V | undefined | Promise<V | undefined> {
    const entry = this.#l1.get(key);
    if (entry !== undefined) {
      if (entry.value === ABSENT) {
        this.#counters?.negativeHit.inc();
        return undefined;
      }
      this.#counters?.l1Hit.inc();
      return entry.value;
    }
    this.#counters?.l1Miss.inc();
    let pending = this.#inflight.get(key);
    if (pending === undefined) {
      pending = this.#load(key, load, options).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    return pending;
  }

  /** Stores a value in both levels. */
  async set(key: string, value: V, options: SetOptions = {}): Promise<void> {
    const ttlMs = options.ttlMs ?? this.#options.defaultTtlMs;
    this.#store(key, value, ttlMs, options.tags);
    const redis = this.#options.redis;
    if (redis === undefined) return;
    try {
      const pipeline = redis.client.pipeline();
      const payload = { v: value, t: options.tags ?? [], e: Date.now() + ttlMs };
      pipeline.set(this.#redisKey(key), JSON.stringify(payload), 'PX', ttlMs);
      for (const tag of options.tags ?? []) {
        pipeline.sadd(this.#tagKey(tag), key);
        pipeline.pexpire(this.#tagKey(tag), ttlMs, 'GT');
        pipeline.pexpire(this.#tagKey(tag), ttlMs, 'NX');
      }
      await pipeline.exec();
    } catch {
      // L2 is an optimisation: L1 still holds the value.
    }
  }

  /** Removes keys everywhere: both levels here, and other processes' L1. */
  async delete(...keys: string[]): Promise<void> {
    for (const key of keys) this.#l1.delete(key);
    const redis = this.#options.redis;
    if (redis === undefined || keys.length === 0) return;
    try {
      await redis.client.del(...keys.map((key) => this.#redisKey(key)));
      await redis.client.publish(this.#channel, JSON.stringify({ origin: this.#origin, keys }));
    } catch {
      // Remote copies expire with their TTL.
    }
  }

  /** Removes every entry stored with `tag`, in both levels and in other processes. */
  async invalidateTag(tag: string): Promise<void> {
    const local = [...(this.#tags.get(tag) ?? [])];
    for (const key of local) this.#l1.delete(key);
    this.#tags.delete(tag);
    const redis = this.#options.redis;
    if (redis === undefined) return;
    try {
      const remote = await redis.client.smembers(this.#tagKey(tag));
      await redis.client.del(this.#tagKey(tag));
      await this.delete(...new Set([...local, ...remote]));
    } catch {
      // Remote copies expire with their TTL.
    }
  }

  /** Entries in L1 (for tests and readiness). */
  get size(): number {
    return this.#l1.size;
  }

  async #load(key: string, load: () => Promise<V | undefined>, options: SetOptions): Promise<V | undefined> {
    const redis = this.#options.redis;
    if (redis !== undefined) {
      try {
        const raw = await redis.client.get(this.#redisKey(key));
        if (raw !== null) {
          this.#counters?.l2Hit.inc();
          // The expiry travels in the value: one round trip per L2 hit.
          const parsed = JSON.parse(raw) as { v: V | null; t: string[]; e: number };
          const ttlMs = Math.max(1, parsed.e - Date.now());
          if (parsed.v === null) {
            this.#store(key, ABSENT, ttlMs, undefined);
            return undefined;
          }
          this.#store(key, parsed.v, ttlMs, parsed.t);
          return parsed.v;
        }
        this.#counters?.l2Miss.inc();
      } catch {
        // Redis unreachable: go to the source.
      }
    }
    const value = await load();
    if (value === undefined) {
      this.#store(key, ABSENT, this.#options.negativeTtlMs, undefined);
      if (redis !== undefined) {
        try {
          const payload = { v: null, t: [], e: Date.now() + this.#options.negativeTtlMs };
          await redis.client.set(
            this.#redisKey(key),
            JSON.stringify(payload),
            'PX',
            this.#options.negativeTtlMs,
          );
        } catch {
          // L1 holds the negative result.
        }
      }
      return undefined;
    }
    await this.set(key, value, options);
    return value;
  }

  #store(key: string, value: Stored<V>, ttlMs: number, tags: readonly string[] | undefined): void {
    this.#l1.set(key, { value, tags }, { ttl: ttlMs });
    if (tags === undefined) return;
    for (const tag of tags) {
      let keys = this.#tags.get(tag);
      if (keys === undefined) {
        keys = new Set();
        this.#tags.set(tag, keys);
      }
      keys.add(key);
    }
  }

  #untag(key: string, tags: readonly string[] | undefined): void {
    if (tags === undefined) return;
    for (const tag of tags) {
      const keys = this.#tags.get(tag);
      if (keys === undefined) continue;
      keys.delete(key);
      if (keys.size === 0) this.#tags.delete(tag);
    }
  }

  #redisKey(key: string): string {
    return `${this.#options.redis?.prefix ?? ''}cache:${this.name}:${key}`;
  }

  #tagKey(tag: string): string {
    return `${this.#options.redis?.prefix ?? ''}cache:${this.name}:tag:${tag}`;
  }
}
