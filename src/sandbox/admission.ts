import { LRUCache } from 'lru-cache';
import { CircuitBreaker } from '../admission/index.js';
import { CircuitOpenError, ConcurrencyLimitedError } from '../errors.js';
import type { Language } from './types.js';

export interface SandboxAdmissionOptions {
  /** Runs one tenant may have at once, both languages together. */
  maxConcurrentPerTenant: number;
  breaker: { windowMs: number; minRequests: number; failureRate: number; openMs: number };
}

/** A granted run; `release` must be called exactly once with how it went. */
export interface SandboxPermit {
  release(outcome: 'ok' | 'crashed' | 'ignored'): void;
}

/** How long a refused caller should wait before trying again. */
const CONCURRENCY_RETRY_MS = 1_000;

/**
 * Who may start a sandbox run now. Each tenant gets a fixed number of concurrent runs (one more
 * is refused with 429 and Retry-After rather than queued: a tenant flooding the sandbox should
 * not fill the pools' queues for everyone), and a circuit breaker per tenant and language that
 * opens when that tenant's programs keep crashing their interpreters (each crash costs a new
 * process or worker). Kept here, self-contained, until the shared admission layer takes it over.
 */
export class SandboxAdmission {
  readonly #options: SandboxAdmissionOptions;
  readonly #running = new Map<string, number>();
  readonly #breakers = new LRUCache<string, CircuitBreaker>({ max: 10_000 });

  constructor(options: SandboxAdmissionOptions) {
    this.#options = options;
  }

  /** Admits one run or throws `AGENTD_CONCURRENCY_LIMITED` (429) / `AGENTD_CIRCUIT_OPEN` (503). */
  admit(tenantId: string, language: Language): SandboxPermit {
    const running = this.#running.get(tenantId) ?? 0;
    const max = this.#options.maxConcurrentPerTenant;
    if (running >= max) {
      throw new ConcurrencyLimitedError(
        `at most ${max} sandbox runs at once per tenant; ${running} are running`,
        {
          retryAfterMs: CONCURRENCY_RETRY_MS,
          details: { limit: 'sandbox.max_concurrent_per_tenant', max },
        },
      );
    }
    const breaker = this.#breaker(tenantId, language);
    if (!breaker.tryAcquire()) {
      throw new CircuitOpenError(
        `this tenant's ${language} programs keep crashing the sandbox; runs are paused`,
        {
          retryAfterMs: Math.max(1, breaker.retryAfterMs()),
          details: { breaker: `sandbox:${language}` },
        },
      );
    }
    this.#running.set(tenantId, running + 1);
    let released = false;
    return {
      release: (outcome) => {
        if (released) return;
        released = true;
        const now = (this.#running.get(tenantId) ?? 1) - 1;
        if (now <= 0) this.#running.delete(tenantId);
        else this.#running.set(tenantId, now);
        if (outcome === 'crashed') breaker.onFailure();
        else if (outcome === 'ok') breaker.onSuccess();
        else breaker.onIgnored();
      },
    };
  }

  /** Runs in progress for a tenant. */
  running(tenantId: string): number {
    return this.#running.get(tenantId) ?? 0;
  }

  #breaker(tenantId: string, language: Language): CircuitBreaker {
    const key = `${tenantId}\u0000${language}`;
    let breaker = this.#breakers.get(key);
    if (breaker === undefined) {
      const b = this.#options.breaker;
      breaker = new CircuitBreaker(`sandbox:${language}:${tenantId}`, {
        windowMs: b.windowMs,
        minRequests: b.minRequests,
        failureRate: b.failureRate,
        openMs: b.openMs,
        halfOpenProbes: 1,
      });
      this.#breakers.set(key, breaker);
    }
    return breaker;
  }
}
