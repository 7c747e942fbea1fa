import { type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

/** Rounds of per-tenant turn-taking BullMQ priorities can express (see `bullPriority`). */
export const FAIR_ROUNDS = 1000;
/** agentd priorities run from -1000 (last) to 1000 (first). */
const MAX_PRIORITY = 1000;

/**
 * BullMQ runs the lowest priority number first (1 … 2,097,151) and FIFO within one number. agentd
 * priority picks a band; within a band, a tenant's k-th waiting task gets round ⌊k / weight⌋, so
 * every tenant's first waiting task runs before any tenant's second: a burst from one tenant queues
 * behind, not in front of, the others. Rounds past FAIR_ROUNDS share the last one (FIFO).
 */
export function bullPriority(priority: number, round: number): number {
  const band = MAX_PRIORITY - Math.max(-MAX_PRIORITY, Math.min(MAX_PRIORITY, Math.trunc(priority)));
  return band * FAIR_ROUNDS + Math.min(FAIR_ROUNDS - 1, Math.max(0, round)) + 1;
}

export interface QueuedTask {
  id: string;
  tenant: string;
  /** agentd priority (higher first). */
  priority: number;
  /** The tenant's weight (its share of turns). */
  weight: number;
}

export interface TaskQueueOptions {
  url: string;
  /** Prefix of every key (`redis.key_prefix`). */
  prefix: string;
  name: string;
  workerConcurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
}

/** A job handed to this node: the task id and whether an earlier node lost it. */
export interface TaskDelivery {
  id: string;
  /** Times the job was started before (by nodes that died or stalled). */
  redelivered: number;
}

interface JobData {
  tenant: string;
}

/** Decrements a tenant's waiting count, never below zero. */
const TAKE_TURN = `local n = redis.call('DECR', KEYS[1])
if n < 0 then redis.call('SET', KEYS[1], 0) end
return n`;
/** A waiting count outlives no queue: it expires a day after its last enqueue. */
const TURN_TTL_S = 86_400;

/**
 * The cluster's task queue on BullMQ: any node adds, every node's Worker takes jobs and runs them.
 * A job is only a task id (the task itself is in Postgres); its id is the task id, so adding a
 * task twice is a no-op. A node that dies keeps its jobs' locks only for `lockDurationMs`; then
 * another node's stalled-job check puts them back in the queue.
 */
export class DistributedTaskQueue {
  readonly #options: TaskQueueOptions;
  readonly #redis: Redis;
  readonly #connection: Redis;
  readonly #queue: Queue<JobData>;
  #worker: Worker<JobData> | undefined;
  #closed = false;

  constructor(options: TaskQueueOptions, redis: Redis) {
    this.#options = options;
    this.#redis = redis;
    // BullMQ needs commands that wait for a reconnect rather than fail (and a blocking duplicate).
    this.#connection = new Redis(options.url, { maxRetriesPerRequest: null });
    this.#connection.on('error', () => {});
    this.#queue = new Queue<JobData>(options.name, {
      connection: this.#connection,
      prefix: this.#bullPrefix(),
      defaultJobOptions: {
        attempts: 1,
        removeOnComplete: true,
        removeOnFail: { age: 24 * 3600, count: 1000 },
      },
    });
    this.#queue.on('error', () => {});
  }

  #bullPrefix(): string {
    return `${this.#options.prefix}bull`;
  }

  #turnKey(tenant: string): string {
    return `${this.#options.prefix}fair:${this.#options.name}:${tenant}`;
  }

  /** Enqueues a task: one round trip for its tenant's turn, one for the job. */
  async add(task: QueuedTask): Promise<void> {
    const key = this.#turnKey(task.tenant);
    const [[, waiting]] = (await this.#redis.multi().incr(key).expire(key, TURN_TTL_S).exec()) as [
      [Error | null, number],
    ];
    const round = Math.floor((waiting - 1) / Math.max(0.001, task.weight));
    await this.#queue.add(
      'task',
      { tenant: task.tenant },
      { jobId: task.id, priority: bullPriority(task.priority, round) },
    );
  }

  /** Re-adds tasks found unfinished in storage (no-op for those still in the queue). */
  async readd(tasks: QueuedTask[]): Promise<void> {
    for (const task of tasks) {
      await this.#queue.add(
        'task',
        { tenant: task.tenant },
        { jobId: task.id, priority: bullPriority(task.priority, FAIR_ROUNDS - 1) },
      );
    }
  }

  /** Takes a job out of the queue if no node holds it yet; false when it is running (or gone). */
  async remove(id: string): Promise<boolean> {
    const job = await this.#queue.getJob(id);
    if (job === undefined || (await job.isActive())) return false;
    const removed = (await this.#queue.remove(id)) === 1;
    if (removed) await this.#redis.eval(TAKE_TURN, 1, this.#turnKey(job.data.tenant));
    return removed;
  }

  /** Jobs waiting for a node, across the cluster. */
  async waiting(): Promise<number> {
    const counts = await this.#queue.getJobCounts('wait', 'prioritized', 'delayed');
    return (counts.wait ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0);
  }

  /**
   * Starts this node's Worker. `run` resolves once the task is finished and stored; `lost` is told
   * about a job BullMQ failed (stalled more than `maxStalledCount` times), whose task must fail.
   */
  start(run: (delivery: TaskDelivery) => Promise<void>, lost: (id: string, reason: string) => void): void {
    const options = this.#options;
    const worker = new Worker<JobData>(
      options.name,
      async (job: Job<JobData>) => {
        await this.#redis.eval(TAKE_TURN, 1, this.#turnKey(job.data.tenant)).catch(() => {});
        await run({ id: job.id!, redelivered: Math.max(0, (job.attemptsStarted ?? 1) - 1) });
      },
      {
        connection: this.#connection,
        prefix: this.#bullPrefix(),
        concurrency: options.workerConcurrency,
        lockDuration: options.lockDurationMs,
        stalledInterval: options.stalledIntervalMs,
        maxStalledCount: options.maxStalledCount,
      },
    );
    worker.on('error', () => {});
    worker.on('failed', (job, err) => {
      if (job?.id !== undefined) lost(job.id, err.message);
    });
    this.#worker = worker;
  }

  /** Stops taking jobs; jobs already taken keep their locks until `close`. */
  async pause(): Promise<void> {
    await this.#worker?.pause(true);
  }

  /**
   * Closes without waiting for jobs: any this node still holds lose their locks, and other nodes
   * take them after `lockDurationMs`.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#worker?.close(true).catch(() => {});
    await this.#queue.close().catch(() => {});
    this.#connection.disconnect();
  }
}
