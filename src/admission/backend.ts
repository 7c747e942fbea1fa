import type { BudgetPeriod } from './budget.js';

/** A token bucket to draw from: all buckets of a plan are checked before any is drawn. */
export interface RateDraw {
  key: string;
  /** `tenant.requests_per_second` etc.: named in refusals. */
  limit: string;
  capacity: number;
  refillPerSecond: number;
  /** A request draws 1 from `request` buckets and its token estimate from `token` buckets. */
  unit: 'request' | 'token';
}

export interface BudgetCheck {
  key: string;
  limit: string;
  period: BudgetPeriod;
  max: number;
  unit: 'tokens' | 'usd';
}

export interface ConcurrencyClaim {
  key: string;
  limit: string;
  max: number;
}

/** One admission decision: rates, budgets and concurrency, taken together or not at all. */
export interface AdmitPlan {
  rates: RateDraw[];
  budgets: BudgetCheck[];
  concurrency: ConcurrencyClaim[];
}

export type AdmitOutcome =
  | { ok: true }
  | { ok: false; kind: 'rate' | 'budget' | 'concurrency'; limit: string; retryAfterMs: number | undefined };

export const ADMITTED: AdmitOutcome = { ok: true };

/**
 * Where limit state lives: this process (`LocalLimits`) or Redis shared by every process
 * (`RedisLimits`). `admit` checks every rate and budget of the plan together: if one fails,
 * nothing changes. If they pass, the rates are drawn and the concurrency slots tried; when a slot
 * is not free the outcome is `concurrency` with the rates still drawn (the caller queues the
 * request, or refunds them with `adjust` when it refuses).
 */
export interface LimitBackend {
  readonly kind: 'local' | 'redis';
  admit(plan: AdmitPlan, holder: string, tokens: number): AdmitOutcome | Promise<AdmitOutcome>;
  /** Frees concurrency slots taken by `admit`. */
  release(claims: readonly ConcurrencyClaim[], holder: string): void | Promise<void>;
  /**
   * Draws (positive) or returns (negative) after the fact: `requests` from request buckets and
   * `tokens` from token buckets — actual usage versus an estimate, or a refund on refusal.
   */
  adjust(draws: readonly RateDraw[], requests: number, tokens: number): void | Promise<void>;
  /** Adds spending to budgets; resolves with the amounts now spent, in the order given. */
  charge(budgets: readonly BudgetCheck[], amounts: readonly number[]): number[] | Promise<number[]>;
  close(): Promise<void>;
}
