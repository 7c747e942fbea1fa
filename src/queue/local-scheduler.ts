import { QueueFullError } from '../errors.js';
import { PriorityQueue } from './priority-queue.js';

export interface SchedulerOptions {
  /** Jobs running at once. */
  maxConcurrency: number;
  /** Jobs waiting for a slot; one more is refused with 503. */
  maxQueue: number;
}

/**
 * Runs jobs with bounded concurrency and a bounded priority queue. A job that finds a free slot
 * starts at once without touching the queue; a full queue refuses with `AGENTD_QUEUE_FULL`.
 */
export class LocalScheduler<T> {
  readonly #options: SchedulerOptions;
  readonly #run: (job: T) => Promise<void>;
  readonly #queue = new PriorityQueue<T>();
  #active = 0;
  #paused = false;
  #idle: (() => void)[] = [];

  constructor(options: SchedulerOptions, run: (job: T) => Promise<void>) {
    this.#options = options;
    this.#run = run;
  }

  get active(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#queue.size;
  }

  /**
   * Starts the job now if a slot is free, otherwise queues it by priority (higher first).
   * `force` queues past the bound: for recovered tasks that were already accepted once.
   */
  submit(job: T, priority = 0, options: { force?: boolean } = {}): void {
    if (!this.#paused && this.#active < this.#options.maxConcurrency) {
      this.#start(job);
      return;
    }
    if (this.#queue.size >= this.#options.maxQueue && options.force !== true) {
      throw new QueueFullError(`the task queue is full (${this.#options.maxQueue} waiting)`, {
        retryAfterMs: 1000,
        details: { limit: 'max_queue', max_queue: this.#options.maxQueue },
      });
    }
    this.#queue.push(job, priority);
  }

  /** True when `submit` would accept a job now (a free slot or room in the queue). */
  hasRoom(): boolean {
    return (
      (!this.#paused && this.#active < this.#options.maxConcurrency) ||
      this.#queue.size < this.#options.maxQueue
    );
  }

  /** Removes a job that has not started; returns whether it was queued. */
  remove(job: T): boolean {
    return this.#queue.remove(job);
  }

  /** Stops starting queued jobs (running ones continue). */
  pause(): void {
    this.#paused = true;
  }

  /** Resolves when no job is running. */
  whenIdle(): Promise<void> {
    if (this.#active === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #start(job: T): void {
    this.#active++;
    this.#run(job).then(
      () => this.#done(),
      () => this.#done(),
    );
  }

  #done(): void {
    this.#active--;
    if (!this.#paused) {
      const next = this.#queue.pop();
      if (next !== undefined) {
        this.#start(next);
        return;
      }
    }
    if (this.#active === 0 && this.#idle.length > 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const resolve of idle) resolve();
    }
  }
}
