/**
 * One low-resolution timer for many timeouts (TTFT, tool deadlines, task deadlines).
 * A `setTimeout` per stream chunk or per call costs an allocation and a heap operation each
 * time it is re-armed; here a deadline is an entry in a bucket keyed by its tick, and a single
 * interval (running only while something is scheduled) fires due buckets.
 */

export interface TimerEntry {
  /** Set by `cancel`; a cancelled entry is skipped when its bucket fires. */
  cancelled: boolean;
}

interface Entry extends TimerEntry {
  fn: (arg: unknown) => void;
  arg: unknown;
}

export class CoarseTimer {
  readonly resolutionMs: number;
  #buckets = new Map<number, Entry[]>();
  #pending = 0;
  #interval: NodeJS.Timeout | undefined;
  #lastTick = 0;

  constructor(resolutionMs = 10) {
    this.resolutionMs = resolutionMs;
  }

  /** Calls `fn(arg)` no earlier than `delayMs` from now (and at most one resolution later). */
  schedule<A>(delayMs: number, fn: (arg: A) => void, arg: A): TimerEntry {
    const tick = Math.ceil((performance.now() + delayMs) / this.resolutionMs);
    const entry: Entry = { cancelled: false, fn: fn as (arg: unknown) => void, arg };
    const bucket = this.#buckets.get(tick);
    if (bucket === undefined) this.#buckets.set(tick, [entry]);
    else bucket.push(entry);
    this.#pending++;
    if (this.#interval === undefined) this.#start();
    return entry;
  }

  /** Cancels an entry; cheap and idempotent. */
  cancel(entry: TimerEntry | undefined): void {
    if (entry === undefined || entry.cancelled) return;
    entry.cancelled = true;
    if (--this.#pending === 0) this.#stop();
  }

  /** Number of live (scheduled, not cancelled, not fired) entries. */
  get size(): number {
    return this.#pending;
  }

  #start(): void {
    this.#lastTick = Math.floor(performance.now() / this.resolutionMs);
    this.#interval = setInterval(() => this.#fire(), this.resolutionMs);
    this.#interval.unref();
  }

  #stop(): void {
    if (this.#interval !== undefined) clearInterval(this.#interval);
    this.#interval = undefined;
    this.#buckets.clear();
  }

  #fire(): void {
    const now = Math.floor(performance.now() / this.resolutionMs);
    for (let tick = this.#lastTick + 1; tick <= now; tick++) {
      const bucket = this.#buckets.get(tick);
      if (bucket === undefined) continue;
      this.#buckets.delete(tick);
      for (const entry of bucket) {
        if (entry.cancelled) continue;
        entry.cancelled = true;
        this.#pending--;
        entry.fn(entry.arg);
      }
    }
    this.#lastTick = now;
    if (this.#pending === 0) this.#stop();
  }
}

/** The process-wide timer used by the runtime's hot paths. */
export const coarseTimer = new CoarseTimer();
