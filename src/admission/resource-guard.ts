import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

export type ResourceState = 'ok' | 'warn' | 'refuse';

export interface ResourceGuardOptions {
  /** Heap in use (MiB) treated as 100%; defaults to V8's heap limit. */
  maxHeapMb?: number | undefined;
  /** Event-loop delay p99 (ms) treated as 100%. */
  maxEventLoopLagMs: number;
  warnRatio: number;
  refuseRatio: number;
  checkIntervalMs: number;
  /** Consecutive checks past `refuseRatio` before refusing: a single GC pause or starved second does not shed traffic. */
  sustainChecks?: number;
}

export interface ResourceSnapshot {
  state: ResourceState;
  heap_used_mb: number;
  heap_limit_mb: number;
  event_loop_lag_p99_ms: number;
}

/**
 * Watches heap use and event-loop delay. Past `warnRatio` of a limit the state is `warn`; past
 * `refuseRatio` it is `refuse` and new tasks are turned away (503 + Retry-After) until it
 * recovers — the process degrades instead of falling over. Checks run on an unref'd interval,
 * so admission only reads a field.
 */
export class ResourceGuard {
  readonly #options: ResourceGuardOptions;
  readonly #histogram: IntervalHistogram;
  readonly #timer: NodeJS.Timeout;
  readonly #heapLimitMb: number;
  #snapshot: ResourceSnapshot;
  #overChecks = 0;
  #listener: ((from: ResourceState, to: ResourceState, snapshot: ResourceSnapshot) => void) | undefined;

  constructor(options: ResourceGuardOptions) {
    this.#options = options;
    this.#heapLimitMb = options.maxHeapMb ?? getHeapStatistics().heap_size_limit / 2 ** 20;
    this.#histogram = monitorEventLoopDelay({ resolution: 20 });
    this.#histogram.enable();
    this.#snapshot = {
      state: 'ok',
      heap_used_mb: 0,
      heap_limit_mb: this.#heapLimitMb,
      event_loop_lag_p99_ms: 0,
    };
    this.#timer = setInterval(() => this.check(), options.checkIntervalMs);
    this.#timer.unref();
  }

  get state(): ResourceState {
    return this.#snapshot.state;
  }

  snapshot(): ResourceSnapshot {
    return this.#snapshot;
  }

  onStateChange(
    listener: (from: ResourceState, to: ResourceState, snapshot: ResourceSnapshot) => void,
  ): void {
    this.#listener = listener;
  }

  /** Re-reads heap and event-loop delay (also called on the interval). */
  check(): ResourceSnapshot {
    const heapUsedMb = getHeapStatistics().used_heap_size / 2 ** 20;
    const lagMs = this.#histogram.percentile(99) / 1e6;
    this.#histogram.reset();
    const pressure = Math.max(heapUsedMb / this.#heapLimitMb, lagMs / this.#options.maxEventLoopLagMs);
    this.#overChecks = pressure >= this.#options.refuseRatio ? this.#overChecks + 1 : 0;
    const sustained = this.#overChecks >= (this.#options.sustainChecks ?? 3);
    const state: ResourceState = sustained ? 'refuse' : pressure >= this.#options.warnRatio ? 'warn' : 'ok';
    const previous = this.#snapshot.state;
    this.#snapshot = {
      state,
      heap_used_mb: Math.round(heapUsedMb),
      heap_limit_mb: Math.round(this.#heapLimitMb),
      event_loop_lag_p99_ms: Math.round(lagMs * 10) / 10,
    };
    if (state !== previous) this.#listener?.(previous, state, this.#snapshot);
    return this.#snapshot;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#histogram.disable();
  }
}
