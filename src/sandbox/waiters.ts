import { OverloadedError } from '../errors.js';

/** A run waiting for a free interpreter. */
export interface Waiter<T> {
  resolve(slot: T): void;
  reject(err: Error): void;
}

/**
 * The bounded FIFO of runs waiting for an interpreter. A full queue refuses at once (503 with
 * Retry-After) rather than growing: a caller that cannot be served soon should hear so now.
 */
export class Waiters<T> {
  readonly #max: number;
  readonly #what: string;
  #items: Waiter<T>[] = [];

  constructor(max: number, what: string) {
    this.#max = max;
    this.#what = what;
  }

  get length(): number {
    return this.#items.length;
  }

  /** Waits for a slot; rejects at once when the queue is full. */
  wait(signal: AbortSignal | undefined): Promise<T> {
    if (this.#items.length >= this.#max) {
      return Promise.reject(
        new OverloadedError(`all ${this.#what} are busy and ${this.#max} runs are already waiting`, {
          retryAfterMs: 1000,
        }),
      );
    }
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = { resolve, reject };
      this.#items.push(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          const index = this.#items.indexOf(waiter);
          if (index === -1) return;
          this.#items.splice(index, 1);
          reject(signal.reason instanceof Error ? signal.reason : new Error('cancelled'));
        },
        { once: true },
      );
    });
  }

  /** Hands a slot to the longest waiter; false when nobody waits. */
  handOver(slot: T): boolean {
    const waiter = this.#items.shift();
    if (waiter === undefined) return false;
    waiter.resolve(slot);
    return true;
  }

  /** Fails every waiter (on close). */
  rejectAll(err: Error): void {
    const items = this.#items;
    this.#items = [];
    for (const waiter of items) waiter.reject(err);
  }
}
