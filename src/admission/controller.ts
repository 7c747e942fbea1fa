import { LRUCache } from 'lru-cache';
import type { Config, LimitSet } from '../config/index.js';
import {
  type AgentdError,
  BudgetExhaustedError,
  ConcurrencyLimitedError,
  ForbiddenError,
  OverloadedError,
  RateLimitedError,
} from '../errors.js';
import type {
  AdmitOutcome,
  AdmitPlan,
  BudgetCheck,
  ConcurrencyClaim,
  LimitBackend,
  RateDraw,
} from './backend.js';
import type { Identity } from './identity.js';
import type { ResourceGuard } from './resource-guard.js';

/** What a task holds while it runs: its slots, and the buckets and budgets its usage is charged to. */
export class TaskTicket {
  readonly holder: string;
  readonly identity: Identity;
  readonly plan: AdmissionPlan;
  /** Tokens drawn from the per-minute buckets for the model call about to happen (an estimate). */
  reserved: number;
  released = false;

  constructor(holder: string, identity: Identity, plan: AdmissionPlan, reserved: number) {
    this.holder = holder;
    this.identity = identity;
    this.plan = plan;
    this.reserved = reserved;
  }
}

/** An admitted task still waiting for a concurrency slot; `granted` settles when it gets one or gives up. */
export class QueuedAdmission {
  readonly granted: Promise<TaskTicket>;
  constructor(granted: Promise<TaskTicket>) {
    this.granted = granted;
  }
}

/** An admission decision: admitted now, or admitted into the wait queue for a slot. */
export type Admitted = TaskTicket | QueuedAdmission;

/** The limits that apply to one (tenant, key, user, agent) combination, resolved once and cached. */
export interface AdmissionPlan {
  /** Everything checked when a task is admitted. */
  admit: AdmitPlan;
  /** The same concurrency claims alone, retried while a task waits for a slot. */
  slots: AdmitPlan;
  /** Per-minute token buckets, drawn before each model call after the first. */
  tokens: AdmitPlan;
  tokenDraws: RateDraw[];
  budgets: BudgetCheck[];
  /** Longest queue for each concurrency claim (by key). */
  maxQueue: Map<string, number>;
}

interface Waiter {
  ticket: TaskTicket;
  resolve: (ticket: TaskTicket) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  claimKey: string;
}

export interface AdmissionOptions {
  guard?: ResourceGuard | undefined;
  /** Retry interval for queued tasks when slots may be freed elsewhere (Redis). */
  pollMs?: number;
}

const EMPTY: AdmitPlan = { rates: [], budgets: [], concurrency: [] };
const NOTHING = (): void => {};

/**
 * The one admission layer every task passes: resource guard, request-rate and token-rate
 * buckets, budgets and concurrency — for the global, tenant, key, user and agent scopes that
 * have limits configured. A refusal is an error carrying the limit's name and a retry hint, and
 * leaves no trace; an admitted task holds a ticket until it ends.
 */
export class AdmissionController {
  readonly backend: LimitBackend;
  readonly #config: Config;
  readonly #guard: ResourceGuard | undefined;
  readonly #plans = new LRUCache<string, AdmissionPlan>({ max: 10_000 });
  /** Plans by identity object, then agent: API-key identities are cached objects, so this hits. */
  readonly #byIdentity = new WeakMap<Identity, Map<string, AdmissionPlan>>();
  readonly #scopes = new Map<string, AdmitPlan>();
  readonly #waiters = new Map<string, Waiter[]>();
  readonly #pollMs: number;
  readonly #queueTimeoutMs: number;

  constructor(config: Config, backend: LimitBackend, options: AdmissionOptions = {}) {
    this.#config = config;
    this.backend = backend;
    this.#guard = options.guard;
    this.#pollMs = options.pollMs ?? 100;
    this.#queueTimeoutMs = config.limits.queue_timeout_ms;
  }

  /** The resource guard's verdict, for readiness. */
  get guard(): ResourceGuard | undefined {
    return this.#guard;
  }

  /**
   * Admits a task for `identity` on `agent`, drawing one request and `estimate` tokens: a ticket,
   * or a place in a slot's wait queue. Decides synchronously with the local backend and through a
   * promise with Redis. A refusal is thrown (or rejected) and leaves no trace.
   */
  admit(identity: Identity, agent: string, holder: string, estimate: number): Admitted | Promise<Admitted> {
    if (identity.agents !== undefined && !identity.agents.has(agent)) {
      throw new ForbiddenError(`this API key may not run agent "${agent}"`, {
        details: { limit: 'key.agents', agent },
      });
    }
    if (this.#guard !== undefined && this.#guard.state === 'refuse') {
      const snapshot = this.#guard.snapshot();
      throw new OverloadedError('agentd is over its memory or event-loop limit; try again shortly', {
        retryAfterMs: 2000,
        details: { limit: 'resource', ...snapshot },
      });
    }
    const plan = this.#plan(identity, agent);
    const ticket = new TaskTicket(holder, identity, plan, estimate);
    if (plan.admit === EMPTY) return ticket;
    const outcome = this.backend.admit(plan.admit, holder, estimate);
    if (outcome instanceof Promise) return outcome.then((result) => this.#afterAdmit(ticket, result));
    return this.#afterAdmit(ticket, outcome);
  }

  /**
   * Before a model call after the first: draws `estimate` tokens from the task's per-minute
   * buckets. Resolves to 0 when drawn, or to the milliseconds to wait before trying again.
   */
  reserveTokens(ticket: TaskTicket, estimate: number): number | Promise<number> {
    const plan = ticket.plan;
    if (plan.tokenDraws.length === 0) return 0;
    const outcome = this.backend.admit(plan.tokens, ticket.holder, estimate);
    const settle = (result: AdmitOutcome): number => {
      if (result.ok) {
        ticket.reserved = estimate;
        return 0;
      }
      if (result.retryAfterMs === undefined) throw refusal(result);
      return result.retryAfterMs;
    };
    return outcome instanceof Promise ? outcome.then(settle) : settle(outcome);
  }

  /**
   * After a model call: replaces the token reservation by the actual usage and charges the
   * budgets. Returns the first budget now spent, if any (the loop stops the task on it).
   */
  settle(
    ticket: TaskTicket,
    tokens: number,
    usd: number,
  ): BudgetCheck | undefined | Promise<BudgetCheck | undefined> {
    const plan = ticket.plan;
    const difference = tokens - ticket.reserved;
    ticket.reserved = 0;
    const adjusted =
      plan.tokenDraws.length > 0 && difference !== 0
        ? this.backend.adjust(plan.tokenDraws, 0, difference)
        : undefined;
    if (plan.budgets.length === 0)
      return adjusted instanceof Promise ? adjusted.then(() => undefined) : undefined;
    const amounts = plan.budgets.map((budget) => (budget.unit === 'usd' ? usd : tokens));
    const charged = this.backend.charge(plan.budgets, amounts);
    const check = (spent: number[]): BudgetCheck | undefined => {
      for (let i = 0; i < spent.length; i++) if (spent[i]! >= plan.budgets[i]!.max) return plan.budgets[i];
      return undefined;
    };
    return charged instanceof Promise ? charged.then(check) : check(charged);
  }

  /** Frees the task's slots and hands them to queued tasks. Idempotent. */
  release(ticket: TaskTicket): void {
    if (ticket.released) return;
    ticket.released = true;
    const claims = ticket.plan.admit.concurrency;
    if (claims.length === 0) return;
    const done = this.backend.release(claims, ticket.holder);
    if (done instanceof Promise)
      void done.then(
        () => this.#wake(claims),
        () => this.#wake(claims),
      );
    else this.#wake(claims);
  }

  /**
   * Before a call to `model`: draws a request and `estimate` tokens from the model's limits.
   * Resolves to 0 when drawn (call `settleModel` after the call), or the milliseconds until the
   * model has room — the router then tries the next model in its chain, or waits.
   */
  admitModel(model: string, estimate: number): number | Promise<number> {
    const plan = this.#scopePlan(`m:${model}`, 'model', this.#config.limits.models[model]);
    if (plan === undefined) return 0;
    const outcome = this.backend.admit(plan, model, estimate);
    const settle = (result: AdmitOutcome): number =>
      result.ok ? 0 : (result.retryAfterMs ?? Number.POSITIVE_INFINITY);
    return outcome instanceof Promise ? outcome.then(settle) : settle(outcome);
  }

  /** After a call to `model`: replaces its token estimate by the actual usage. */
  settleModel(model: string, estimate: number, tokens: number): void {
    const plan = this.#scopePlan(`m:${model}`, 'model', this.#config.limits.models[model]);
    if (plan === undefined || tokens === estimate) return;
    void this.backend.adjust(plan.rates, 0, tokens - estimate);
  }

  /**
   * Before a call to tool `name`: draws from its rate and takes a concurrency slot. Returns the
   * function that frees the slot, or throws a refusal (which the model receives as the result).
   */
  admitTool(name: string, holder: string): (() => void) | Promise<() => void> {
    const plan = this.#scopePlan(`tool:${name}`, 'tool', this.#config.limits.tools[name]);
    if (plan === undefined) return NOTHING;
    const release = (): void => {
      if (plan.concurrency.length > 0) void this.backend.release(plan.concurrency, holder);
    };
    const settle = (result: AdmitOutcome): (() => void) => {
      if (result.ok) return release;
      if (result.kind === 'concurrency') void this.backend.adjust(plan.rates, -1, 0);
      throw refusal(result);
    };
    const outcome = this.backend.admit(plan, holder, 0);
    return outcome instanceof Promise ? outcome.then(settle) : settle(outcome);
  }

  /** Tasks waiting for a slot, by limit key (for readiness). */
  queued(): number {
    let total = 0;
    for (const waiters of this.#waiters.values()) total += waiters.length;
    return total;
  }

  #afterAdmit(ticket: TaskTicket, outcome: AdmitOutcome): Admitted | Promise<Admitted> {
    if (outcome.ok) return ticket;
    if (outcome.kind !== 'concurrency') throw refusal(outcome);
    // Rates are drawn: queue for the slot if there is room, else refund and refuse.
    const plan = ticket.plan;
    const claimKey = plan.admit.concurrency.find((claim) => claim.limit === outcome.limit)?.key ?? '';
    const queue = this.#waiters.get(claimKey);
    if ((queue?.length ?? 0) >= (plan.maxQueue.get(claimKey) ?? 0)) {
      const refund = this.backend.adjust(plan.admit.rates, -1, -ticket.reserved);
      const error = new ConcurrencyLimitedError(
        `too many tasks running for ${outcome.limit.split('.')[0]} (and its queue is full)`,
        {
          retryAfterMs: 1000,
          details: { limit: outcome.limit },
        },
      );
      if (refund instanceof Promise) return refund.then(() => Promise.reject(error));
      throw error;
    }
    const granted = new Promise<TaskTicket>((resolve, reject) => {
      const waiter: Waiter = {
        ticket,
        resolve,
        reject,
        claimKey,
        timer: setTimeout(() => this.#giveUp(waiter, outcome.limit), this.#queueTimeoutMs),
      };
      if (queue === undefined) this.#waiters.set(claimKey, [waiter]);
      else queue.push(waiter);
      if (this.backend.kind === 'redis') this.#poll(claimKey);
    });
    return new QueuedAdmission(granted);
  }

  #giveUp(waiter: Waiter, limit: string): void {
    this.#remove(waiter);
    void this.backend.adjust(waiter.ticket.plan.admit.rates, -1, -waiter.ticket.reserved);
    waiter.reject(
      new ConcurrencyLimitedError(`waited ${this.#queueTimeoutMs} ms for a slot (${limit})`, {
        retryAfterMs: 1000,
        details: { limit, queue_timeout_ms: this.#queueTimeoutMs },
      }),
    );
  }

  #remove(waiter: Waiter): void {
    const queue = this.#waiters.get(waiter.claimKey);
    if (queue === undefined) return;
    const index = queue.indexOf(waiter);
    if (index !== -1) queue.splice(index, 1);
    if (queue.length === 0) this.#waiters.delete(waiter.claimKey);
  }

  /** Offers freed slots to the oldest waiters of the claims just released. */
  #wake(claims: readonly ConcurrencyClaim[]): void {
    for (const claim of claims) {
      const queue = this.#waiters.get(claim.key);
      if (queue !== undefined && queue.length > 0) void this.#tryHead(claim.key);
    }
  }

  async #tryHead(claimKey: string): Promise<void> {
    const waiter = this.#waiters.get(claimKey)?.[0];
    if (waiter === undefined) return;
    const outcome = await this.backend.admit(waiter.ticket.plan.slots, waiter.ticket.holder, 0);
    if (!outcome.ok || !this.#waiters.get(claimKey)?.includes(waiter)) return;
    clearTimeout(waiter.timer);
    this.#remove(waiter);
    waiter.resolve(waiter.ticket);
    // A release may have freed more than one slot (several claims): keep going while granted.
    void this.#tryHead(claimKey);
  }

  /** With Redis, slots can be freed by other processes: queued tasks retry on an interval. */
  #poll(claimKey: string): void {
    const timer = setInterval(() => {
      if (!this.#waiters.has(claimKey)) {
        clearInterval(timer);
        return;
      }
      void this.#tryHead(claimKey);
    }, this.#pollMs);
    timer.unref();
  }

  /** The plan for a model's or tool's own limits, or undefined when it has none. */
  #scopePlan(scope: string, label: string, set: LimitSet | undefined): AdmitPlan | undefined {
    if (set === undefined) return undefined;
    let plan = this.#scopes.get(scope);
    if (plan === undefined) {
      plan = scopeDraws(scope, label, set);
      this.#scopes.set(scope, plan);
    }
    return plan;
  }

  #plan(identity: Identity, agent: string): AdmissionPlan {
    let byAgent = this.#byIdentity.get(identity);
    const known = byAgent?.get(agent);
    if (known !== undefined) return known;
    const plan = this.#planFor(identity, agent);
    if (byAgent === undefined) {
      byAgent = new Map();
      this.#byIdentity.set(identity, byAgent);
    }
    byAgent.set(agent, plan);
    return plan;
  }

  #planFor(identity: Identity, agent: string): AdmissionPlan {
    const cacheKey = `${identity.tenantId}\u0000${identity.keyId ?? ''}\u0000${identity.userId ?? ''}\u0000${agent}`;
    let plan = this.#plans.get(cacheKey);
    if (plan === undefined) {
      plan = resolvePlan(this.#config, identity, agent);
      this.#plans.set(cacheKey, plan);
    }
    return plan;
  }
}

/** Turns a refused outcome into the error a client sees. */
function refusal(outcome: Exclude<AdmitOutcome, { ok: true }>): AgentdError {
  const details = { limit: outcome.limit };
  const retry = outcome.retryAfterMs === undefined ? {} : { retryAfterMs: outcome.retryAfterMs };
  if (outcome.kind === 'budget') {
    return new BudgetExhaustedError(`the ${outcome.limit} budget is spent`, { ...retry, details });
  }
  if (outcome.kind === 'concurrency') {
    return new ConcurrencyLimitedError(`too many tasks running (${outcome.limit})`, {
      retryAfterMs: 1000,
      details,
    });
  }
  if (outcome.retryAfterMs === undefined) {
    return new RateLimitedError(
      `the request can never fit ${outcome.limit}: it needs more than the bucket holds`,
      { details },
    );
  }
  return new RateLimitedError(`rate limit ${outcome.limit} reached`, { ...retry, details });
}

/** The draws, budgets and claims one scope's limits make. */
function scopeDraws(scope: string, label: string, set: LimitSet): AdmitPlan {
  const rates: RateDraw[] = [];
  const budgets: BudgetCheck[] = [];
  const concurrency: ConcurrencyClaim[] = [];
  if (set.requests_per_second !== undefined) {
    rates.push({
      key: `${scope}:rps`,
      limit: `${label}.requests_per_second`,
      capacity: set.burst ?? Math.max(1, Math.ceil(set.requests_per_second)),
      refillPerSecond: set.requests_per_second,
      unit: 'request',
    });
  }
  if (set.tokens_per_minute !== undefined) {
    rates.push({
      key: `${scope}:tpm`,
      limit: `${label}.tokens_per_minute`,
      capacity: set.tokens_per_minute,
      refillPerSecond: set.tokens_per_minute / 60,
      unit: 'token',
    });
  }
  if (set.concurrency !== undefined) {
    concurrency.push({ key: `${scope}:conc`, limit: `${label}.concurrency`, max: set.concurrency });
  }
  const budgetFields = [
    ['tokens_per_day', 'tokens', 'day'],
    ['tokens_per_month', 'tokens', 'month'],
    ['usd_per_day', 'usd', 'day'],
    ['usd_per_month', 'usd', 'month'],
  ] as const;
  for (const [field, unit, period] of budgetFields) {
    const max = set[field];
    if (max !== undefined)
      budgets.push({ key: `${scope}:${unit}`, limit: `${label}.${field}`, period, max, unit });
  }
  return { rates, budgets, concurrency };
}

/** Resolves the limits configured for an identity and agent into a plan of draws and claims. */
export function resolvePlan(config: Config, identity: Identity, agent: string): AdmissionPlan {
  const limits = config.limits;
  const tenantSet = limits.tenants[identity.tenantId] ?? limits.default_tenant;
  const scopes: { scope: string; label: string; set: LimitSet | undefined }[] = [
    { scope: 'g', label: 'global', set: limits.global },
    { scope: `t:${identity.tenantId}`, label: 'tenant', set: tenantSet },
    {
      scope: `k:${identity.keyId ?? ''}`,
      label: 'key',
      set: identity.keyId === undefined ? undefined : identity.limits,
    },
    { scope: `a:${agent}`, label: 'agent', set: limits.agents[agent] },
  ];
  if (identity.userId !== undefined && limits.default_user !== undefined) {
    scopes.push({
      scope: `u:${identity.tenantId}:${identity.userId}`,
      label: 'user',
      set: limits.default_user,
    });
  }
  const rates: RateDraw[] = [];
  const tokenDraws: RateDraw[] = [];
  const budgets: BudgetCheck[] = [];
  const concurrency: ConcurrencyClaim[] = [];
  const maxQueue = new Map<string, number>();
  for (const { scope, label, set } of scopes) {
    if (set === undefined) continue;
    const draws = scopeDraws(scope, label, set);
    for (const draw of draws.rates) {
      rates.push(draw);
      if (draw.unit === 'token') tokenDraws.push(draw);
    }
    for (const budget of draws.budgets) budgets.push(budget);
    for (const claim of draws.concurrency) {
      concurrency.push(claim);
      const queue = (set as LimitSet).max_queue;
      maxQueue.set(claim.key, queue !== undefined ? queue : claim.max * 10);
    }
  }
  const empty = rates.length === 0 && budgets.length === 0 && concurrency.length === 0;
  return {
    admit: empty ? EMPTY : { rates, budgets, concurrency },
    slots: { rates: [], budgets: [], concurrency },
    tokens: { rates: tokenDraws, budgets: [], concurrency: [] },
    tokenDraws,
    budgets,
    maxQueue,
  };
}
