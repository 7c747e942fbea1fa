import { Redis } from 'ioredis';
import { OverloadedError } from '../errors.js';
import type {
  AdmitOutcome,
  AdmitPlan,
  BudgetCheck,
  ConcurrencyClaim,
  LimitBackend,
  RateDraw,
} from './backend.js';
import { ADMITTED } from './backend.js';
import { periodOf } from './budget.js';
import type { LocalLimits } from './local-limits.js';

/**
 * One decision, atomically, in one round trip. Time comes from Redis (TIME), so every process
 * shares one clock. Buckets are strings `tokens|updated_ms` that expire once full again;
 * concurrency slots are sorted sets of holders scored by lease expiry, so a dead process's slots
 * free themselves; budgets are counters per period that expire after the period.
 *
 * ARGV: holder, lease_ms, tokens, n_rates, n_budgets, n_slots, then per rate: capacity,
 * refill per ms, unit (r|t); per budget: max; per slot: max.
 * Returns {1} admitted, or {0, kind, index, retry_after_ms | -1}; kind 'slot' means the rates
 * were drawn but a slot was not free.
 */
const ADMIT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local holder, lease, tokens = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local nr, nb, nc = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local a = 7
local levels = {}
for i = 1, nr do
  local cap, rate = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local cost = 1
  if ARGV[a + 2] == 't' then cost = tokens end
  a = a + 3
  local level = cap
  local state = redis.call('GET', KEYS[i])
  if state then
    local sep = string.find(state, '|', 1, true)
    level = math.min(cap, tonumber(string.sub(state, 1, sep - 1)) + math.max(0, now - tonumber(string.sub(state, sep + 1))) * rate)
  end
  if cost > cap then return {0, 'rate', i, -1} end
  if level < cost then return {0, 'rate', i, math.ceil((cost - level) / rate)} end
  levels[i] = level - cost
end
for j = 1, nb do
  local max = tonumber(ARGV[a])
  a = a + 1
  local spent = tonumber(redis.call('GET', KEYS[nr + j]) or '0')
  if spent >= max then return {0, 'budget', j, -1} end
end
for i = 1, nr do
  local cap, rate = tonumber(ARGV[7 + (i - 1) * 3]), tonumber(ARGV[8 + (i - 1) * 3])
  redis.call('SET', KEYS[i], levels[i] .. '|' .. now, 'PX', math.ceil((cap - levels[i]) / rate) + 1000)
end
for k = 1, nc do
  local key = KEYS[nr + nb + k]
  local max = tonumber(ARGV[a])
  a = a + 1
  if redis.call('ZCARD', key) >= max then
    -- Expired leases (of dead holders) are swept only when the set looks full.
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    if redis.call('ZCARD', key) >= max then
      for m = 1, k - 1 do redis.call('ZREM', KEYS[nr + nb + m], holder) end
      return {0, 'slot', k, -1}
    end
  end
  redis.call('ZADD', key, now + lease, holder)
  redis.call('PEXPIRE', key, lease * 2)
end
return {1}
`;

/** ARGV: requests, tokens, then per bucket: capacity, refill per ms, unit. Draws or refunds. */
const ADJUST = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local requests, tokens = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, #KEYS do
  local cap, rate = tonumber(ARGV[3 + (i - 1) * 3]), tonumber(ARGV[4 + (i - 1) * 3])
  local amount = requests
  if ARGV[5 + (i - 1) * 3] == 't' then amount = tokens end
  if amount ~= 0 then
    local level = cap
    local state = redis.call('GET', KEYS[i])
    if state then
      local sep = string.find(state, '|', 1, true)
      level = math.min(cap, tonumber(string.sub(state, 1, sep - 1)) + math.max(0, now - tonumber(string.sub(state, sep + 1))) * rate)
    end
    level = math.min(cap, level - amount)
    redis.call('SET', KEYS[i], level .. '|' .. now, 'PX', math.ceil((cap - level) / rate) + 1000)
  end
end
return 1
`;

type Reply = [number, string?, number?, number?];

interface LimitsRedis extends Redis {
  agentdAdmit(numKeys: number, ...args: (string | number)[]): Promise<Reply>;
  agentdAdjust(numKeys: number, ...args: (string | number)[]): Promise<number>;
}

export interface RedisLimitsOptions {
  url: string;
  keyPrefix: string;
  /** Redis unreachable: use `fallback` (open) or refuse (closed). */
  failMode: 'open' | 'closed';
  fallback: LocalLimits;
  /** How long a concurrency slot lives without renewal (a dead holder's slot frees after this). */
  leaseMs?: number;
  onTransition?: (available: boolean, error?: Error) => void;
}

/**
 * Limits shared by every agentd process through Redis. Decisions are Lua scripts (one round trip,
 * auto-pipelined by ioredis). When Redis is not ready, decisions go to the local fallback
 * (fail-open) or are refused with 503 (fail-closed) — at once, without waiting on a dead
 * connection — and each transition is reported once.
 */
export class RedisLimits implements LimitBackend {
  readonly kind = 'redis';
  readonly redis: LimitsRedis;
  readonly #prefix: string;
  readonly #failMode: 'open' | 'closed';
  readonly #fallback: LocalLimits;
  readonly #leaseMs: number;
  readonly #held = new Map<string, ConcurrencyClaim[]>();
  readonly #renewal: NodeJS.Timeout;
  #available = false;
  readonly #onTransition: ((available: boolean, error?: Error) => void) | undefined;

  constructor(options: RedisLimitsOptions) {
    this.#prefix = options.keyPrefix;
    this.#failMode = options.failMode;
    this.#fallback = options.fallback;
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#onTransition = options.onTransition;
    this.redis = new Redis(options.url, {
      enableAutoPipelining: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      lazyConnect: false,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    }) as LimitsRedis;
    this.redis.defineCommand('agentdAdmit', { lua: ADMIT });
    this.redis.defineCommand('agentdAdjust', { lua: ADJUST });
    this.redis.on('ready', () => this.#transition(true));
    this.redis.on('error', (err: Error) => this.#transition(false, err));
    this.redis.on('close', () => this.#transition(false));
    // Long tasks keep their slots by renewing the leases of everything this process holds.
    this.#renewal = setInterval(() => void this.#renew(), Math.max(1000, Math.floor(this.#leaseMs / 3)));
    this.#renewal.unref();
  }

  /** True while Redis answers; false while decisions use the fail mode. */
  get available(): boolean {
    return this.#available;
  }

  get failMode(): 'open' | 'closed' {
    return this.#failMode;
  }

  /** Resolves once connected (or rejects after `timeoutMs`). */
  async ready(timeoutMs = 5000): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Redis not ready after ${timeoutMs} ms`)), timeoutMs);
      this.redis.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  admit(plan: AdmitPlan, holder: string, tokens: number): AdmitOutcome | Promise<AdmitOutcome> {
    if (!this.#usable()) return this.#unavailable(() => this.#fallback.admit(plan, holder, tokens));
    const keys: string[] = [];
    const args: (string | number)[] = [
      holder,
      this.#leaseMs,
      tokens,
      plan.rates.length,
      plan.budgets.length,
      plan.concurrency.length,
    ];
    for (const draw of plan.rates) {
      keys.push(this.#prefix + draw.key);
      args.push(draw.capacity, draw.refillPerSecond / 1000, draw.unit === 'request' ? 'r' : 't');
    }
    const now = Date.now();
    for (const budget of plan.budgets) {
      keys.push(this.#budgetKey(budget, now));
      args.push(budget.max);
    }
    for (const claim of plan.concurrency) {
      keys.push(this.#prefix + claim.key);
      args.push(claim.max);
    }
    return this.redis.agentdAdmit(keys.length, ...keys, ...args).then(
      (reply) => this.#outcome(plan, holder, reply, now),
      (err: Error) => this.#onError(err, () => this.#fallback.admit(plan, holder, tokens)),
    );
  }

  async release(claims: readonly ConcurrencyClaim[], holder: string): Promise<void> {
    this.#fallback.release(claims);
    const held = this.#held.get(holder);
    if (held !== undefined) {
      const remaining = held.filter((claim) => !claims.includes(claim));
      if (remaining.length === 0) this.#held.delete(holder);
      else this.#held.set(holder, remaining);
    }
    if (!this.#usable()) return;
    try {
      await Promise.all(claims.map((claim) => this.redis.zrem(this.#prefix + claim.key, holder)));
    } catch {
      // The lease expires by itself.
    }
  }

  async adjust(draws: readonly RateDraw[], requests: number, tokens: number): Promise<void> {
    if (draws.length === 0) return;
    if (!this.#usable()) {
      this.#fallback.adjust(draws, requests, tokens);
      return;
    }
    const keys = draws.map((draw) => this.#prefix + draw.key);
    const args: (string | number)[] = [requests, tokens];
    for (const draw of draws)
      args.push(draw.capacity, draw.refillPerSecond / 1000, draw.unit === 'request' ? 'r' : 't');
    try {
      await this.redis.agentdAdjust(keys.length, ...keys, ...args);
    } catch {
      this.#fallback.adjust(draws, requests, tokens);
    }
  }

  async charge(budgets: readonly BudgetCheck[], amounts: readonly number[]): Promise<number[]> {
    if (!this.#usable()) return this.#fallback.charge(budgets, amounts);
    const now = Date.now();
    try {
      const pipeline = this.redis.pipeline();
      for (let i = 0; i < budgets.length; i++) {
        const budget = budgets[i]!;
        const key = this.#budgetKey(budget, now);
        pipeline.incrbyfloat(key, amounts[i] ?? 0);
        // Kept one day past its period, then gone: no unbounded key growth.
        pipeline.pexpireat(key, periodOf(budget.period, now).endsAt + 86_400_000);
      }
      const results = (await pipeline.exec()) ?? [];
      return budgets.map((_, i) => Number(results[i * 2]?.[1] ?? 0));
    } catch {
      return this.#fallback.charge(budgets, amounts);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#renewal);
    this.redis.disconnect();
  }

  #outcome(plan: AdmitPlan, holder: string, reply: Reply, now: number): AdmitOutcome {
    if (reply[0] === 1) {
      if (plan.concurrency.length > 0)
        this.#held.set(holder, [...(this.#held.get(holder) ?? []), ...plan.concurrency]);
      return ADMITTED;
    }
    const index = (reply[2] ?? 1) - 1;
    const wait = reply[3] === undefined || reply[3] < 0 ? undefined : reply[3];
    if (reply[1] === 'rate')
      return { ok: false, kind: 'rate', limit: plan.rates[index]!.limit, retryAfterMs: wait };
    if (reply[1] === 'budget') {
      const budget = plan.budgets[index]!;
      return {
        ok: false,
        kind: 'budget',
        limit: budget.limit,
        retryAfterMs: periodOf(budget.period, now).endsAt - now,
      };
    }
    return { ok: false, kind: 'concurrency', limit: plan.concurrency[index]!.limit, retryAfterMs: undefined };
  }

  #budgetKey(budget: BudgetCheck, now: number): string {
    return `${this.#prefix}${budget.key}:${periodOf(budget.period, now).key}`;
  }

  #usable(): boolean {
    return this.redis.status === 'ready';
  }

  #unavailable<T>(local: () => T): T {
    if (this.#failMode === 'open') return local();
    throw new OverloadedError('shared limits are unavailable (Redis unreachable, redis_fail_mode: closed)', {
      retryAfterMs: 2000,
      details: { limit: 'redis' },
    });
  }

  #onError<T>(err: Error, local: () => T): T {
    this.#transition(false, err);
    return this.#unavailable(local);
  }

  #transition(available: boolean, error?: Error): void {
    if (available === this.#available) return;
    this.#available = available;
    this.#onTransition?.(available, error);
  }

  async #renew(): Promise<void> {
    if (this.#held.size === 0 || !this.#usable()) return;
    const pipeline = this.redis.pipeline();
    const expiry = Date.now() + this.#leaseMs;
    for (const [holder, claims] of this.#held) {
      for (const claim of claims) pipeline.zadd(this.#prefix + claim.key, 'XX', expiry, holder);
    }
    try {
      await pipeline.exec();
    } catch {
      // Renewal failed: slots may lapse and be retaken; the next renewal tries again.
    }
  }
}
