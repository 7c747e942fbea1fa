import {
  ADMITTED,
  type AdmitOutcome,
  type AdmitPlan,
  type BudgetCheck,
  type ConcurrencyClaim,
  type LimitBackend,
  type RateDraw,
} from './backend.js';
import { BudgetLedger, periodOf } from './budget.js';
import { TokenBucket } from './token-bucket.js';

/** Limit state in this process: token buckets, slot counters and a budget ledger in maps. */
export class LocalLimits implements LimitBackend {
  readonly kind = 'local';
  readonly #buckets = new Map<string, TokenBucket>();
  /** Slots held per concurrency key; the object is updated in place (one lookup per take). */
  readonly #slots = new Map<string, { held: number }>();
  readonly #ledger = new BudgetLedger();
  readonly #now: () => number;
  readonly #wallClock: () => number;

  constructor(now: () => number = () => performance.now(), wallClock: () => number = Date.now) {
    this.#now = now;
    this.#wallClock = wallClock;
  }

  admit(plan: AdmitPlan, _holder: string, tokens: number): AdmitOutcome {
    const now = this.#now();
    const rates = plan.rates;
    // Check rates and budgets first: their refusal must leave no trace.
    for (let i = 0; i < rates.length; i++) {
      const draw = rates[i]!;
      const wait = this.#bucket(draw, now).waitFor(draw.unit === 'request' ? 1 : tokens, now);
      if (wait > 0)
        return {
          ok: false,
          kind: 'rate',
          limit: draw.limit,
          retryAfterMs: Number.isFinite(wait) ? wait : undefined,
        };
    }
    const budgets = plan.budgets;
    if (budgets.length > 0) {
      const wall = this.#wallClock();
      for (const budget of budgets) {
        if (this.#ledger.spent(budget.key, budget.period, wall) >= budget.max) {
          return {
            ok: false,
            kind: 'budget',
            limit: budget.limit,
            retryAfterMs: periodOf(budget.period, wall).endsAt - wall,
          };
        }
      }
    }
    for (let i = 0; i < rates.length; i++) {
      const draw = rates[i]!;
      this.#bucket(draw, now).take(draw.unit === 'request' ? 1 : tokens, now);
    }
    const claims = plan.concurrency;
    for (let i = 0; i < claims.length; i++) {
      const claim = claims[i]!;
      if (this.#slot(claim.key).held >= claim.max) {
        return { ok: false, kind: 'concurrency', limit: claim.limit, retryAfterMs: undefined };
      }
    }
    for (let i = 0; i < claims.length; i++) this.#slot(claims[i]!.key).held++;
    return ADMITTED;
  }

  release(claims: readonly ConcurrencyClaim[]): void {
    for (const claim of claims) {
      const slot = this.#slots.get(claim.key);
      if (slot !== undefined && slot.held > 0) slot.held--;
    }
  }

  adjust(draws: readonly RateDraw[], requests: number, tokens: number): void {
    const now = this.#now();
    for (const draw of draws) {
      const amount = draw.unit === 'request' ? requests : tokens;
      if (amount === 0) continue;
      const bucket = this.#bucket(draw, now);
      if (amount > 0) bucket.debit(amount, now);
      else bucket.refund(-amount);
    }
  }

  charge(budgets: readonly BudgetCheck[], amounts: readonly number[]): number[] {
    const wall = this.#wallClock();
    const spent: number[] = [];
    for (let i = 0; i < budgets.length; i++) {
      const budget = budgets[i]!;
      spent.push(this.#ledger.charge(budget.key, budget.period, amounts[i] ?? 0, wall));
    }
    return spent;
  }

  /** Slots held under a key (for readiness and tests). */
  held(key: string): number {
    return this.#slots.get(key)?.held ?? 0;
  }

  async close(): Promise<void> {}

  #slot(key: string): { held: number } {
    let slot = this.#slots.get(key);
    if (slot === undefined) {
      slot = { held: 0 };
      this.#slots.set(key, slot);
    }
    return slot;
  }

  #bucket(draw: RateDraw, now: number): TokenBucket {
    let bucket = this.#buckets.get(draw.key);
    if (bucket === undefined || bucket.capacity !== draw.capacity) {
      bucket = new TokenBucket(draw.capacity, draw.refillPerSecond, now);
      this.#buckets.set(draw.key, bucket);
    }
    return bucket;
  }
}
