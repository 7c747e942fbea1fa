import type { BreakerConfig } from '../config/index.js';

/**
 * A circuit breaker over a rolling window of outcomes. Closed: calls pass and outcomes are
 * counted in time buckets. When the window holds at least `minRequests` and the failure rate
 * (failures plus, when configured, slow calls) reaches `failureRate`, it opens: calls are refused
 * for `openMs`. Then it lets `halfOpenProbes` calls through; a success closes it, a failure
 * opens it again.
 */

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerOptions {
  /** Length of the rolling window. */
  windowMs: number;
  /** Outcomes needed in the window before the rate is judged. */
  minRequests: number;
  /** Share of failing calls (0..1) that opens the circuit. */
  failureRate: number;
  /** How long the circuit stays open before probing. */
  openMs: number;
  /** Concurrent probe calls allowed while half-open. */
  halfOpenProbes: number;
  /** A successful call slower than this counts as slow (off when undefined). */
  slowCallMs?: number | undefined;
}

export const DEFAULT_BREAKER: BreakerOptions = {
  windowMs: 30_000,
  minRequests: 10,
  failureRate: 0.5,
  openMs: 15_000,
  halfOpenProbes: 1,
};

const BUCKETS = 10;

/** Breaker options from their configuration form (`llm.breaker`, `tools.breaker`). */
export function breakerOptions(config: BreakerConfig): BreakerOptions {
  return {
    windowMs: config.window_ms,
    minRequests: config.min_requests,
    failureRate: config.failure_rate,
    openMs: config.open_ms,
    halfOpenProbes: config.half_open_probes,
    slowCallMs: config.slow_call_ms,
  };
}

export type BreakerListener = (name: string, from: BreakerState, to: BreakerState) => void;

export class CircuitBreaker {
  readonly name: string;
  readonly #options: BreakerOptions;
  readonly #now: () => number;
  readonly #bucketMs: number;
  readonly #total = new Uint32Array(BUCKETS);
  readonly #failed = new Uint32Array(BUCKETS);
  #bucket = 0;
  #bucketStart = 0;
  #state: BreakerState = 'closed';
  #openedAt = 0;
  #probes = 0;
  #listener: BreakerListener | undefined;

  constructor(name: string, options: BreakerOptions = DEFAULT_BREAKER, now: () => number = Date.now) {
    this.name = name;
    this.#options = options;
    this.#now = now;
    this.#bucketMs = Math.max(1, Math.ceil(options.windowMs / BUCKETS));
    this.#bucketStart = now();
  }

  /** Called on every state transition (for logs and metrics). */
  onStateChange(listener: BreakerListener): void {
    this.#listener = listener;
  }

  get state(): BreakerState {
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.#options.openMs) return 'half_open';
    return this.#state;
  }

  /** Asks to make a call. False means the circuit refuses it now. */
  tryAcquire(): boolean {
    if (this.#state === 'closed') return true;
    if (this.#state === 'open') {
      if (this.#now() - this.#openedAt < this.#options.openMs) return false;
      this.#transition('half_open');
    }
    if (this.#probes >= this.#options.halfOpenProbes) return false;
    this.#probes++;
    return true;
  }

  /** Milliseconds until an open circuit lets a probe through (0 when not open). */
  retryAfterMs(): number {
    if (this.#state !== 'open') return 0;
    return Math.max(0, this.#options.openMs - (this.#now() - this.#openedAt));
  }

  /** Records a successful call that took `durationMs`. */
  onSuccess(durationMs = 0): void {
    const slow = this.#options.slowCallMs !== undefined && durationMs >= this.#options.slowCallMs;
    if (this.#state === 'half_open') {
      this.#probes = Math.max(0, this.#probes - 1);
      if (slow) this.#open();
      else this.#close();
      return;
    }
    this.#record(slow);
  }

  /** Records a failed call. */
  onFailure(): void {
    if (this.#state === 'half_open') {
      this.#probes = Math.max(0, this.#probes - 1);
      this.#open();
      return;
    }
    if (this.#state === 'open') return;
    this.#record(true);
  }

  /** Releases an acquired call whose outcome says nothing about the target (cancelled, 4xx). */
  onIgnored(): void {
    if (this.#state === 'half_open') this.#probes = Math.max(0, this.#probes - 1);
  }

  /** Counts in the current window (for readiness detail). */
  snapshot(): { state: BreakerState; requests: number; failures: number; retry_after_ms: number } {
    this.#rotate();
    let requests = 0;
    let failures = 0;
    for (let i = 0; i < BUCKETS; i++) {
      requests += this.#total[i]!;
      failures += this.#failed[i]!;
    }
    return { state: this.state, requests, failures, retry_after_ms: this.retryAfterMs() };
  }

  #record(failed: boolean): void {
    this.#rotate();
    this.#total[this.#bucket]!++;
    if (!failed) return;
    this.#failed[this.#bucket]!++;
    let requests = 0;
    let failures = 0;
    for (let i = 0; i < BUCKETS; i++) {
      requests += this.#total[i]!;
      failures += this.#failed[i]!;
    }
    if (requests >= this.#options.minRequests && failures / requests >= this.#options.failureRate)
      this.#open();
  }

  /** Advances the bucket ring to the current time, clearing buckets that fell out of the window. */
  #rotate(): void {
    const now = this.#now();
    const elapsed = Math.floor((now - this.#bucketStart) / this.#bucketMs);
    if (elapsed <= 0) return;
    const steps = Math.min(elapsed, BUCKETS);
    for (let i = 0; i < steps; i++) {
      this.#bucket = (this.#bucket + 1) % BUCKETS;
      this.#total[this.#bucket] = 0;
      this.#failed[this.#bucket] = 0;
    }
    this.#bucketStart += elapsed * this.#bucketMs;
  }

  #open(): void {
    this.#openedAt = this.#now();
    this.#transition('open');
  }

  #close(): void {
    this.#total.fill(0);
    this.#failed.fill(0);
    this.#probes = 0;
    this.#transition('closed');
  }

  #transition(to: BreakerState): void {
    const from = this.#state;
    this.#state = to;
    if (from !== to) this.#listener?.(this.name, from, to);
  }
}
