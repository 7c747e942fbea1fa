import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

export interface AdaptiveOptions {
  /** Event-loop delay (p99 over each interval) to stay under. */
  targetLagMs: number;
  minConcurrency: number;
  maxConcurrency: number;
  intervalMs: number;
}

/** What the controller steers. */
export interface Steerable {
  limit: number;
  readonly active: number;
}

/**
 * Steers a scheduler's concurrency by event-loop delay, AIMD-style: past the target it cuts the
 * limit by a fifth (tasks wait in the queue instead of slowing every running one); comfortably
 * under it and busy, it raises the limit by 5 %. The process stays responsive under overload.
 */
export class AdaptiveConcurrency {
  readonly #target: Steerable;
  readonly #options: AdaptiveOptions;
  readonly #histogram: IntervalHistogram;
  readonly #timer: NodeJS.Timeout;
  #lastLagMs = 0;

  constructor(target: Steerable, options: AdaptiveOptions) {
    this.#target = target;
    this.#options = options;
    this.#histogram = monitorEventLoopDelay({ resolution: 10 });
    this.#histogram.enable();
    this.#timer = setInterval(() => this.adjust(this.#histogram.percentile(99) / 1e6), options.intervalMs);
    this.#timer.unref();
  }

  /** The last measured event-loop delay p99 (ms). */
  get lagMs(): number {
    return this.#lastLagMs;
  }

  /** One control step for a measured delay (called on the interval; exposed for tests). */
  adjust(lagMs: number): void {
    this.#histogram.reset();
    this.#lastLagMs = lagMs;
    const { targetLagMs, minConcurrency, maxConcurrency } = this.#options;
    const limit = this.#target.limit;
    if (lagMs > targetLagMs) {
      this.#target.limit = Math.max(minConcurrency, Math.floor(limit * 0.8));
    } else if (lagMs < targetLagMs / 2 && this.#target.active >= limit * 0.9 && limit < maxConcurrency) {
      this.#target.limit = Math.min(maxConcurrency, limit + Math.max(1, Math.ceil(limit * 0.05)));
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#histogram.disable();
  }
}
