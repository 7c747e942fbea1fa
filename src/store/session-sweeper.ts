import type { Store } from './types.js';

/** Sessions deleted per statement batch, so one sweep never holds the database for long. */
const BATCH = 500;

/**
 * Deletes sessions idle longer than the TTL (their messages with them), every `intervalMs`. The
 * timer is unref'd (it never keeps the process alive) and `stop` waits for a sweep in progress,
 * so the store can close right after.
 */
export class SessionSweeper {
  readonly #store: Store;
  readonly #idleTtlMs: number;
  readonly #onError: (err: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<number> | undefined;

  constructor(store: Store, idleTtlMs: number, onError: (err: unknown) => void) {
    this.#store = store;
    this.#idleTtlMs = idleTtlMs;
    this.#onError = onError;
  }

  /** True when a session last updated at `updatedAt` has expired by `now`. */
  expired(updatedAt: number, now = Date.now()): boolean {
    return updatedAt < now - this.#idleTtlMs;
  }

  start(intervalMs: number): void {
    this.#timer ??= setInterval(() => {
      this.sweep().catch(this.#onError);
    }, intervalMs).unref();
  }

  /** Deletes every expired session now; how many. Concurrent calls share one sweep. */
  sweep(now = Date.now()): Promise<number> {
    this.#sweeping ??= this.#sweepAll(now - this.#idleTtlMs).finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  async #sweepAll(idleBefore: number): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await this.#store.deleteIdleSessions(idleBefore, BATCH);
      total += deleted;
      if (deleted < BATCH) return total;
    }
  }

  /** Stops the timer and waits for a sweep in progress. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#sweeping?.catch(() => {});
  }
}
