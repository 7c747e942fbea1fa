/**
 * One low-resolution timer for many timeouts (TTFT, tool deadlines, task deadlines).
 * A `setTimeout` per stream chunk or per call costs an allocation and a heap operation each
 * time it is re-armed; here a deadline is an entry in a bucket keyed by its tick, and a single
 * interval (running only while something is scheduled, and one tick after) fires due buckets.
 */

export interface TimerEntry {
  /** Set by `cancel`; a cancelled entry is skipped when its bucket fires. */
  cancelled: boolean;
}

interface Entry extends TimerEntry {
  fn: (arg: unknown) => void;
  arg: unknown;
  tick: number;
  /** Position in its bucket, so that cancelling removes it at once (swap with the last). */
  index: number;
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
    if (this.#interval === undefined) this.#start();
    // Never a tick that has already fired (a zero delay on a tick boundary, or a callback
    // scheduling while its own tick fires): such an entry would never run.
    const tick = Math.max(Math.ceil((performance.now() + delayMs) / this.resolutionMs), this.#lastTick + 1);
    const entry: Entry = { cancelled: false, fn: fn as (arg: unknown) => void, arg, tick, index: 0 };
    const bucket = this.#buckets.get(tick);
    if (bucket === undefined) this.#buckets.set(tick, [entry]);
    else entry.index = bucket.push(entry) - 1;
    this.#pending++;
    return entry;
  }

  /**
   * Cancels an entry; cheap and idempotent. The entry leaves its bucket at once, so what it
   * refers to is not kept alive until its deadline (a 60 s limit on a call that took 1 ms).
   */
  cancel(entry: TimerEntry | undefined): void {
    if (entry === undefined || entry.cancelled) return;
    entry.cancelled = true;
    const own = entry as Entry;
    own.arg = undefined;
    const bucket = this.#buckets.get(own.tick);
    if (bucket !== undefined && bucket[own.index] === own) {
      const last = bucket.pop()!;
      if (last !== own) {
        bucket[own.index] = last;
        last.index = own.index;
      }
      if (bucket.length === 0) this.#buckets.delete(own.tick);
    }
    // The interval stops at its next tick if nothing was scheduled meanwhile: stopping here would
    // clear and re-create it for every call at low concurrency (twice per provider call).
    this.#pending--;
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
      this.#lastTick = tick;
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
