/**
 * A token bucket: `capacity` tokens, refilled continuously at `refillPerSecond`. Time comes from
 * the caller (milliseconds, monotonic in the local case): a clock that jumps backwards refills
 * nothing, and one that jumps forwards refills at most to capacity.
 */
export class TokenBucket {
  readonly capacity: number;
  readonly refillPerMs: number;
  #tokens: number;
  #updatedAt: number;

  constructor(capacity: number, refillPerSecond: number, now: number) {
    if (!(capacity > 0) || !(refillPerSecond > 0))
      throw new RangeError('capacity and refill rate must be positive');
    this.capacity = capacity;
    this.refillPerMs = refillPerSecond / 1000;
    this.#tokens = capacity;
    this.#updatedAt = now;
  }

  /** Tokens available at `now`. */
  available(now: number): number {
    this.#refill(now);
    return this.#tokens;
  }

  /**
   * Milliseconds until `n` tokens are available: 0 when they are now, Infinity when `n` exceeds
   * the capacity (it can never fit). Takes nothing.
   */
  waitFor(n: number, now: number): number {
    if (n > this.capacity) return Number.POSITIVE_INFINITY;
    this.#refill(now);
    if (this.#tokens >= n) return 0;
    return Math.ceil((n - this.#tokens) / this.refillPerMs);
  }

  /** Takes `n` tokens if available now; returns the wait as `waitFor` does (0 = taken). */
  take(n: number, now: number): number {
    const wait = this.waitFor(n, now);
    if (wait === 0) this.#tokens -= n;
    return wait;
  }

  /** Removes `n` tokens unconditionally (actual usage above an estimate); may go negative. */
  debit(n: number, now: number): void {
    this.#refill(now);
    this.#tokens -= n;
  }

  /** Returns `n` tokens (an estimate above actual usage), never above capacity. */
  refund(n: number): void {
    this.#tokens = Math.min(this.capacity, this.#tokens + n);
  }

  #refill(now: number): void {
    const elapsed = now - this.#updatedAt;
    if (elapsed <= 0) {
      // A clock that went backwards: restart from here without refilling.
      if (elapsed < 0) this.#updatedAt = now;
      return;
    }
    this.#tokens = Math.min(this.capacity, this.#tokens + elapsed * this.refillPerMs);
    this.#updatedAt = now;
  }
}
