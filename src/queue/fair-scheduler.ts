import { QueueFullError } from '../errors.js';
import { BinaryHeap } from '../lib/binary-heap.js';
import { coarseTimer, type TimerEntry } from '../lib/coarse-timer.js';
import { PriorityQueue } from './priority-queue.js';

/** What the scheduler needs to know about a job. */
export interface JobTraits<T> {
  tenant(job: T): string;
  priority(job: T): number;
  /** Epoch ms by which the job must have started, if any. */
  deadline(job: T): number | undefined;
}

export interface FairSchedulerOptions {
  /** Jobs running at once (the ceiling when adaptive). */
  maxConcurrency: number;
  /** Jobs waiting, across tenants; one more is refused with 503. */
  maxQueue: number;
  /** A tenant's share when several wait: weight 2 gets twice the starts of weight 1. */
  weight(tenant: string): number;
}

interface TenantQueue<T> {
  tenant: string;
  jobs: PriorityQueue<T>;
  /** Stride scheduling: the tenant with the lowest pass starts next; each start adds 1/weight. */
  pass: number;
  /** Bumped whenever the tenant's heap entry goes stale (lazy deletion). */
  version: number;
}

interface HeapEntry<T> {
  queue: TenantQueue<T>;
  priority: number;
  pass: number;
  version: number;
}

interface Waiting<T> {
  job: T;
  queue: TenantQueue<T>;
  timer: TimerEntry | undefined;
}

/**
 * Starts jobs with bounded concurrency and a bounded queue, fairly across tenants: among waiting
 * jobs of the highest priority, tenants take turns in proportion to their weights (stride
 * scheduling), so one tenant's burst cannot starve another. A job past its start deadline fails
 * at once instead of waiting. The concurrency limit can be lowered and raised while running
 * (see AdaptiveConcurrency).
 */
export class FairScheduler<T> {
  readonly #options: FairSchedulerOptions;
  readonly #traits: JobTraits<T>;
  readonly #run: (job: T) => Promise<void>;
  readonly #expire: (job: T) => void;
  readonly #tenants = new Map<string, TenantQueue<T>>();
  /** Tenants with waiting jobs: highest head priority first, then the lowest pass. */
  readonly #heap = new BinaryHeap<HeapEntry<T>>(
    (a, b) => a.priority > b.priority || (a.priority === b.priority && a.pass < b.pass),
  );
  readonly #waiting = new Map<T, Waiting<T>>();
  #limit: number;
  #active = 0;
  #queued = 0;
  #virtualTime = 0;
  #paused = false;
  #idle: (() => void)[] = [];
  /** Moving average of job durations (ms), for Retry-After estimates. */
  #averageMs = 1000;

  constructor(
    options: FairSchedulerOptions,
    traits: JobTraits<T>,
    run: (job: T) => Promise<void>,
    expire: (job: T) => void,
  ) {
    this.#options = options;
    this.#traits = traits;
    this.#run = run;
    this.#expire = expire;
    this.#limit = options.maxConcurrency;
  }

  get active(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#queued;
  }

  /** The concurrency limit in force (≤ maxConcurrency). */
  get limit(): number {
    return this.#limit;
  }

  set limit(value: number) {
    this.#limit = Math.max(1, Math.min(this.#options.maxConcurrency, Math.round(value)));
    this.#drain();
  }

  /** True when `submit` would accept a job now. */
  hasRoom(): boolean {
    return (!this.#paused && this.#active < this.#limit) || this.#queued < this.#options.maxQueue;
  }

  /** A wait estimate for a job joining the queue now (ms). */
  estimatedWaitMs(): number {
    return Math.ceil(((this.#queued + 1) * this.#averageMs) / Math.max(1, this.#limit));
  }

  /**
   * Starts the job now if a slot is free and nothing waits, else queues it. `force` queues past
   * the bound (recovered jobs that were accepted once already).
   */
  submit(job: T, options: { force?: boolean } = {}): void {
    if (!this.#paused && this.#active < this.#limit && this.#queued === 0) {
      this.#start(job);
      return;
    }
    if (this.#queued >= this.#options.maxQueue && options.force !== true) {
      throw new QueueFullError(`the task queue is full (${this.#options.maxQueue} waiting)`, {
        retryAfterMs: this.estimatedWaitMs(),
        details: { limit: 'tasks.max_queue', max_queue: this.#options.maxQueue },
      });
    }
    const tenant = this.#traits.tenant(job);
    let queue = this.#tenants.get(tenant);
    if (queue === undefined) {
      queue = { tenant, jobs: new PriorityQueue<T>(), pass: this.#virtualTime, version: 0 };
      this.#tenants.set(tenant, queue);
    } else if (queue.jobs.size === 0) {
      // A tenant returning after a pause joins at the current virtual time: no saved-up credit.
      queue.pass = Math.max(queue.pass, this.#virtualTime);
    }
    const priority = this.#traits.priority(job);
    const head = queue.jobs.peekPriority();
    queue.jobs.push(job, priority);
    this.#queued++;
    const deadline = this.#traits.deadline(job);
    const timer =
      deadline === undefined
        ? undefined
        : coarseTimer.schedule(Math.max(0, deadline - Date.now()), expireJob, { scheduler: this, job });
    this.#waiting.set(job, { job, queue, timer });
    if (head === undefined || priority > head) this.#pushTenant(queue);
    this.#drain();
  }

  /** Removes a job that has not started; returns whether it was queued. */
  remove(job: T): boolean {
    const waiting = this.#waiting.get(job);
    if (waiting === undefined || !waiting.queue.jobs.remove(job)) return false;
    this.#waiting.delete(job);
    coarseTimer.cancel(waiting.timer);
    this.#queued--;
    this.#pushTenant(waiting.queue);
    return true;
  }

  /** Called by the deadline timer: fails a job still waiting past its start deadline. */
  expireWaiting(job: T): void {
    if (this.remove(job)) this.#expire(job);
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
    const started = performance.now();
    this.#run(job).then(
      () => this.#done(started),
      () => this.#done(started),
    );
  }

  #done(started: number): void {
    this.#active--;
    this.#averageMs = this.#averageMs * 0.95 + (performance.now() - started) * 0.05;
    this.#drain();
    if (this.#active === 0 && this.#idle.length > 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const resolve of idle) resolve();
    }
  }

  /** Starts queued jobs while there is room: highest priority first, then the lowest pass. */
  #drain(): void {
    while (!this.#paused && this.#active < this.#limit && this.#queued > 0) {
      const queue = this.#popTenant();
      if (queue === undefined) return;
      const job = queue.jobs.pop()!;
      this.#queued--;
      const waiting = this.#waiting.get(job);
      this.#waiting.delete(job);
      coarseTimer.cancel(waiting?.timer);
      this.#virtualTime = queue.pass;
      queue.pass += 1 / Math.max(0.001, this.#options.weight(queue.tenant));
      if (queue.jobs.size > 0) this.#pushTenant(queue);
      const deadline = this.#traits.deadline(job);
      if (deadline !== undefined && Date.now() > deadline) {
        this.#expire(job);
        continue;
      }
      this.#start(job);
    }
  }

  #pushTenant(queue: TenantQueue<T>): void {
    queue.version++;
    const priority = queue.jobs.peekPriority();
    if (priority === undefined) return;
    this.#heap.push({ queue, priority, pass: queue.pass, version: queue.version });
  }

  #popTenant(): TenantQueue<T> | undefined {
    for (let top = this.#heap.pop(); top !== undefined; top = this.#heap.pop()) {
      // Entries left behind by a change of the tenant's head are stale: skip them.
      if (top.version === top.queue.version && top.queue.jobs.size > 0) return top.queue;
    }
    return undefined;
  }
}

function expireJob<T>(state: { scheduler: FairScheduler<T>; job: T }): void {
  state.scheduler.expireWaiting(state.job);
}
