/** Rows deleted per batch, so one sweep never holds the database for long. */
const BATCH = 500;

/** Deletes up to `limit` rows older than `before` (milliseconds since the epoch); how many. */
export type DeleteBatch = (before: number, limit: number) => Promise<number>;

/**
 * Deletes what has outlived its time to live — idle sessions, finished tasks — in batches, every
 * `intervalMs`. The timer is unref'd (it never keeps the process alive) and `stop` waits for a
 * sweep in progress, so the store can close right after.
 */
export class Sweeper {
  readonly #ttlMs: number;
  readonly #deleteBatch: DeleteBatch;
  readonly #onError: (err: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<number> | undefined;

  constructor(ttlMs: number, deleteBatch: DeleteBatch, onError: (err: unknown) => void) {
    this.#ttlMs = ttlMs;
    this.#deleteBatch = deleteBatch;
    this.#onError = onError;
  }

  /** True when something last touched at `at` has expired by `now`. */
  expired(at: number, now = Date.now()): boolean {
    return at < now - this.#ttlMs;
  }

  start(intervalMs: number): void {
    this.#timer ??= setInterval(() => {
      this.sweep().catch(this.#onError);
    }, intervalMs).unref();
  }

  /** Deletes everything expired now; how many. Concurrent calls share one sweep. */
  sweep(now = Date.now()): Promise<number> {
    this.#sweeping ??= this.#sweepAll(now - this.#ttlMs).finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  async #sweepAll(before: number): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await this.#deleteBatch(before, BATCH);
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
