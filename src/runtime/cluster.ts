import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { type Agent, Task, type TaskEvent, type TaskEventListener } from '../agent/index.js';
import type { Config } from '../config/index.js';
import {
  type AgentdError,
  CancelledError,
  ConfigError,
  InterruptedError,
  QueueUnavailableError,
} from '../errors.js';
import type { AgentdMetrics, Logger } from '../observability/index.js';
import {
  ClusterBus,
  type ClusterSignal,
  DistributedTaskQueue,
  type StreamEvent,
  type TaskDelivery,
  TaskEventStreams,
} from '../queue/index.js';
import { type Store, type TaskRecord, TERMINAL_STATUSES } from '../store/index.js';

/** What the cluster needs from the runtime of its node. */
export interface ClusterHost {
  readonly config: Config;
  readonly log: Logger;
  readonly store: Store;
  readonly metrics: AgentdMetrics;
  agent(name: string): Agent | undefined;
  /** A task's share of turns when several tenants wait. */
  weight(tenant: string): number;
  /** Runs a task on this node through its scheduler (the task's `wait` resolves when it ends). */
  runHere(task: Task): void;
  /** Cancels a task queued or running on this node; false when it is not here. */
  cancelHere(taskId: string): boolean;
  /** A task accepted here finished on another node: release what it held here. */
  finishedElsewhere(task: Task): void;
}

/** Events of a task read from its shared stream (the runtime's EventStream shape). */
export interface ClusterEventStream {
  backlog: TaskEvent[];
  gap: boolean;
  finished: boolean;
  attempt: number;
  unsubscribe(): void;
}

function toTaskEvent(event: StreamEvent): TaskEvent {
  return {
    seq: event.seq,
    type: event.type as TaskEvent['type'],
    data: event.data,
    at: event.at,
    attempt: event.attempt,
  };
}

/**
 * One node's part in a cluster of agentd nodes sharing Redis and Postgres. A task accepted on any
 * node is stored in Postgres, then queued on BullMQ; some node's Worker takes it and runs it through
 * that node's scheduler, writing its events to the task's Redis stream. Nodes awaiting a task they
 * did not run (the one that accepted it, a canceller) learn of its end over pub/sub and read the
 * final row from Postgres.
 */
export class Cluster {
  readonly streams: TaskEventStreams;
  readonly #host: ClusterHost;
  readonly #queue: DistributedTaskQueue;
  readonly #connections: Redis[];
  #bus: ClusterBus | undefined;
  /** Tasks this node awaits but does not run: id → the local Task whose `wait` callers hold. */
  readonly #awaited = new Map<string, Task>();
  /** Cancels that arrived for tasks not (yet) here: checked when a job arrives. */
  readonly #cancelled = new LRUCache<string, true>({ max: 10_000, ttl: 60_000 });
  #reconcile: NodeJS.Timeout | undefined;
  #waiting = 0;
  #closed = false;

  private constructor(host: ClusterHost) {
    this.#host = host;
    const config = host.config;
    const url = config.redis.url!;
    const prefix = config.redis.key_prefix;
    const settings = config.distributed;
    const client = new Redis(url, { maxRetriesPerRequest: 1, enableAutoPipelining: true });
    const blocking = new Redis(url, { maxRetriesPerRequest: 1 });
    const subscriber = new Redis(url, { maxRetriesPerRequest: 1 });
    this.#connections = [client, blocking, subscriber];
    for (const connection of this.#connections) connection.on('error', () => {});
    this.streams = new TaskEventStreams(client, blocking, {
      prefix,
      maxLen: settings.events_max_len,
      ttlMs: settings.events_ttl_ms,
    });
    this.#queue = new DistributedTaskQueue(
      {
        url,
        prefix,
        name: settings.queue,
        workerConcurrency: settings.worker_concurrency,
        lockDurationMs: settings.lock_duration_ms,
        stalledIntervalMs: settings.stalled_interval_ms,
        maxStalledCount: settings.max_stalled_count,
      },
      client,
    );
  }

  /**
   * Joins the cluster: checks the configuration, subscribes to signals, re-queues tasks storage
   * holds as unfinished (a no-op for those still queued), then starts taking jobs.
   */
  static async start(host: ClusterHost): Promise<Cluster> {
    const config = host.config;
    if (config.redis.url === undefined)
      throw new ConfigError('distributed.enabled needs redis.url (or REDIS_URL)');
    if (host.store.kind !== 'postgres')
      throw new ConfigError(
        'distributed.enabled needs a shared store: set storage.url (or DATABASE_URL) to a postgres:// URL',
      );
    const cluster = new Cluster(host);
    try {
      const [client, , subscriber] = cluster.#connections as [Redis, Redis, Redis];
      cluster.#bus = await ClusterBus.open(client, subscriber, config.redis.key_prefix, (signal, id) =>
        cluster.#receive(signal, id),
      );
      await cluster.#requeueUnfinished();
      cluster.#queue.start(
        (delivery) => cluster.#run(delivery),
        (id, reason) => void cluster.#lost(id, reason),
      );
    } catch (err) {
      await cluster.close();
      throw err;
    }
    cluster.#reconcile = setInterval(() => void cluster.#sweep(), config.distributed.reconcile_interval_ms);
    cluster.#reconcile.unref();
    host.metrics.gauge(
      'agentd_distributed_queue_depth',
      'Tasks waiting in the shared queue for any node (same value on every node)',
      [],
      () => [[[], cluster.#waiting]],
    );
    return cluster;
  }

  /**
   * Queues a task accepted here (already durable in storage): its first event goes to its stream
   * before any node can start it, then the job is added. This node awaits it until it ends.
   */
  async dispatch(task: Task, announced = false): Promise<void> {
    const record = task.record;
    this.#awaited.set(task.id, task);
    try {
      if (!announced) await this.announce(task);
      await this.#queue.add({
        id: task.id,
        tenant: record.tenant_id,
        priority: record.options.priority ?? 0,
        weight: this.#host.weight(record.tenant_id),
      });
    } catch (err) {
      throw new QueueUnavailableError('the task could not be queued: Redis is unreachable', {
        cause: err,
        retryAfterMs: 1000,
      });
    }
  }

  /**
   * Writes a task's `task.queued` event to its stream, so clients can follow it from any node
   * (done by `dispatch`, or earlier for a task that waits for a concurrency slot before it is queued).
   */
  async announce(task: Task): Promise<void> {
    const record = task.record;
    this.#awaited.set(task.id, task);
    this.streams.append(task.id, {
      attempt: record.attempt,
      seq: 1,
      type: 'task.queued',
      data: { agent: record.agent },
      at: record.created_at,
    });
    await this.streams.flush();
  }

  /** Remembers a task this node awaits (an idempotent replay of one accepted elsewhere). */
  awaitTask(task: Task): Task {
    const known = this.#awaited.get(task.id);
    if (known !== undefined) return known;
    if (!task.finished) this.#awaited.set(task.id, task);
    return task;
  }

  /** Stops awaiting a task (it failed before it was queued). */
  forget(taskId: string): void {
    this.#awaited.delete(taskId);
  }

  /**
   * Cancels a task that is not on this node: a queued job is taken out of the queue and the task
   * cancelled here; a running one is signalled to its node, and this waits (up to
   * `cancel_wait_ms`) for that node to confirm.
   */
  async cancel(id: string, tenantId: string): Promise<TaskRecord | undefined> {
    const record = await this.#host.store.getTask(id);
    if (record === undefined || record.tenant_id !== tenantId) return undefined;
    if (TERMINAL_STATUSES.has(record.status)) return record;
    if (record.status === 'queued' && (await this.#queue.remove(id))) {
      const task = this.#awaited.get(id) ?? new Task(record, this.#host.config.tasks.event_buffer);
      await this.#finishHere(task, 'cancelled', new CancelledError('cancelled before it started'));
      return task.record;
    }
    const waiter = this.awaitTask(new Task(record, this.#host.config.tasks.event_buffer));
    await this.#bus?.send('cancel', id);
    await waiter.wait(this.#host.config.distributed.cancel_wait_ms);
    if (waiter.finished) return waiter.record;
    return (await this.#host.store.getTask(id)) ?? record;
  }

  /**
   * A task's events from its shared stream, after `after`; undefined when it has no stream (never
   * queued here, or expired: its stored row then holds the outcome).
   */
  async events(
    id: string,
    after: { attempt: number; seq: number },
    listener: TaskEventListener,
  ): Promise<ClusterEventStream | undefined> {
    const read = await this.streams.read(id, after);
    if (!read.exists) return undefined;
    const backlog = read.events.map(toTaskEvent);
    const last = backlog[backlog.length - 1];
    const finished = last?.type === 'task.completed';
    const unsubscribe = finished
      ? () => {}
      : this.streams.follow(id, read.position, (event) => listener(toTaskEvent(event)));
    return { backlog, gap: read.gap, finished, attempt: read.position.attempt, unsubscribe };
  }

  /** Stops taking new jobs (a draining node); the jobs it holds keep their locks. */
  async pause(): Promise<void> {
    await this.#queue.pause().catch(() => {});
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#reconcile !== undefined) clearInterval(this.#reconcile);
    await this.#queue.close();
    await this.streams.close();
    for (const connection of this.#connections) connection.disconnect();
  }

  /** A job from the queue: claims the task in storage and runs it here. */
  async #run(delivery: TaskDelivery): Promise<void> {
    const host = this.#host;
    const id = delivery.id;
    const awaited = this.#awaited.get(id);
    // A first delivery of a task accepted here needs no read: nothing else can have touched it.
    const record =
      delivery.redelivered === 0 && awaited?.record.status === 'queued' && awaited.ticket !== undefined
        ? awaited.record
        : await host.store.getTask(id);
    if (record === undefined || TERMINAL_STATUSES.has(record.status)) return;
    const agent = host.agent(record.agent);
    let task: Task;
    // A redelivered job whose row still says queued may have started all the same: the row's
    // `running` is written in the next batch, the stream's events at once.
    const interrupted =
      record.status === 'running' ||
      (delivery.redelivered > 0 && (await this.#startedBefore(id, record.attempt)));
    if (interrupted) {
      // The node that ran it died (or stalled past its lock): its agent's on_interrupt decides.
      task = new Task(record, host.config.tasks.event_buffer);
      if (agent === undefined || agent.onInterrupt === 'fail') {
        await this.#finishHere(
          task,
          'failed',
          new InterruptedError('the node running the task stopped before it ended'),
        );
        return;
      }
      const last = await this.streams.last(id);
      record.attempt = Math.max(record.attempt, last?.attempt ?? 0) + 1;
      record.status = 'queued';
      record.started_at = null;
      this.#publish(task);
      task.events.append('task.queued', { agent: record.agent, recovered: true });
      host.log.info({ task_id: id, attempt: record.attempt }, 'resuming a task its node lost');
    } else {
      // Accepted here, the same Task runs: its waiters and admission ticket follow it.
      task = awaited ?? new Task(record, host.config.tasks.event_buffer);
      this.#awaited.delete(id);
      if (task.events.lastSeq === 0) await this.#continueNumbering(task);
      this.#publish(task);
    }
    host.runHere(task);
    if (this.#cancelled.has(id)) host.cancelHere(id);
    await task.wait();
    await this.#broadcastEnd(task);
  }

  /** True when the stream holds events of `attempt` past its `task.queued`: that run started. */
  async #startedBefore(id: string, attempt: number): Promise<boolean> {
    const last = await this.streams.last(id);
    return last !== undefined && (last.attempt > attempt || (last.attempt === attempt && last.seq > 1));
  }

  /** Numbers a task's next events after those its stream already holds for its current run. */
  async #continueNumbering(task: Task): Promise<void> {
    const last = await this.streams.last(task.id).catch(() => undefined);
    if (last !== undefined && last.attempt === task.record.attempt) task.events.resumeAt(last.seq);
  }

  /** Streams the task's events from now on to its Redis stream. */
  #publish(task: Task): void {
    const streams = this.streams;
    const record = task.record;
    const subscription = task.events.subscribe(task.events.lastSeq, (event) =>
      streams.append(task.id, {
        attempt: record.attempt,
        seq: event.seq,
        type: event.type,
        data: event.data,
        at: event.at,
      }),
    );
    if (task.events.closed) subscription.unsubscribe();
  }

  /** Ends a task on this node (it never ran, or its run was lost) and tells the others. */
  async #finishHere(task: Task, status: 'failed' | 'cancelled', error: AgentdError): Promise<void> {
    if (task.events.lastSeq === 0) await this.#continueNumbering(task);
    this.#publish(task);
    task.finish(status, null, error.toBody());
    this.#host.store.updateTask(task.record);
    if (this.#awaited.get(task.id) === task) {
      this.#awaited.delete(task.id);
      this.#host.finishedElsewhere(task);
    }
    await this.#broadcastEnd(task);
  }

  /** After a task ended here: its row and last events are written, then nodes awaiting it hear. */
  async #broadcastEnd(task: Task): Promise<void> {
    await this.#host.store.flush();
    await this.streams.flush().catch(() => {});
    await this.#bus?.send('done', task.id).catch(() => {});
  }

  #receive(signal: ClusterSignal, id: string): void {
    if (signal === 'cancel') {
      if (!this.#host.cancelHere(id)) this.#cancelled.set(id, true);
      return;
    }
    const task = this.#awaited.get(id);
    if (task !== undefined) void this.#settle(task);
  }

  /** Reads the final row of an awaited task that ended elsewhere, and wakes its waiters. */
  async #settle(task: Task): Promise<void> {
    if (task.finished) {
      this.#awaited.delete(task.id);
      return;
    }
    const final = await this.#host.store.getTask(task.id).catch(() => undefined);
    if (final === undefined || !TERMINAL_STATUSES.has(final.status)) return;
    if (this.#awaited.get(task.id) !== task) return;
    this.#awaited.delete(task.id);
    task.adopt(final);
    this.#host.finishedElsewhere(task);
  }

  /** BullMQ gave up on a job (it lost its node too often): its task fails. */
  async #lost(id: string, reason: string): Promise<void> {
    const record = await this.#host.store.getTask(id).catch(() => undefined);
    if (record === undefined || TERMINAL_STATUSES.has(record.status)) return;
    const task = new Task(record, this.#host.config.tasks.event_buffer);
    this.#host.log.warn({ task_id: id, reason }, 'the queue gave up on a task');
    await this.#finishHere(task, 'failed', new InterruptedError(`the task kept losing its node: ${reason}`));
  }

  /** Re-queues what storage holds unfinished: tasks whose acceptor died before queueing them. */
  async #requeueUnfinished(): Promise<void> {
    const unfinished = await this.#host.store.unfinishedTasks();
    await this.#queue.readd(
      unfinished.map((record) => ({
        id: record.id,
        tenant: record.tenant_id,
        priority: record.options.priority ?? 0,
        weight: this.#host.weight(record.tenant_id),
      })),
    );
    if (unfinished.length > 0)
      this.#host.log.info({ tasks: unfinished.length }, 'unfinished tasks checked into the shared queue');
  }

  /** Catches completion notices missed while Redis was unreachable, and refreshes the queue gauge. */
  async #sweep(): Promise<void> {
    this.#waiting = await this.#queue.waiting().catch(() => this.#waiting);
    const before = Date.now() - this.#host.config.distributed.reconcile_interval_ms;
    let checked = 0;
    for (const task of [...this.#awaited.values()]) {
      if (checked >= 100) break;
      if (task.record.created_at > before) continue;
      checked++;
      await this.#settle(task);
    }
  }
}
