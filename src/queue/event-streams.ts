import type { Redis } from 'ioredis';

/** One task event as kept in its Redis stream. The entry id is `attempt-seq`. */
export interface StreamEvent {
  attempt: number;
  seq: number;
  type: string;
  data: Record<string, unknown>;
  at: number;
}

export interface StreamPosition {
  attempt: number;
  seq: number;
}

export interface TaskEventStreamsOptions {
  /** Key prefix (`redis.key_prefix`). */
  prefix: string;
  /** Entries kept per stream (XADD MAXLEN ~). */
  maxLen: number;
  /** Stream lifetime after the task's last start or finish. */
  ttlMs: number;
}

/** What a new reader gets: the events after its position, and whether some were trimmed away. */
export interface StreamBacklog {
  /** False when the stream does not exist (never written, or expired). */
  exists: boolean;
  events: StreamEvent[];
  gap: boolean;
  /** The position live delivery continues from. */
  position: StreamPosition;
}

interface PendingEntry {
  key: string;
  event: StreamEvent;
  /** A copy owned here, so merging deltas never changes the task's own event. */
  merged: boolean;
}

interface Follower {
  key: string;
  position: StreamPosition;
  listener: (event: StreamEvent) => void;
}

/** Events that (re)start a stream's lifetime. */
const REFRESHING = new Set(['task.queued', 'task.started', 'task.completed']);
/** Longest one XREAD waits before it re-reads the set of followed streams. */
const BLOCK_MS = 1000;

function entryId(position: StreamPosition): string {
  return `${position.attempt}-${position.seq}`;
}

function parseId(id: string): StreamPosition {
  const dash = id.indexOf('-');
  return { attempt: Number(id.slice(0, dash)), seq: Number(id.slice(dash + 1)) };
}

function after(a: StreamPosition, b: StreamPosition): boolean {
  return a.attempt > b.attempt || (a.attempt === b.attempt && a.seq > b.seq);
}

type RawEntry = [id: string, fields: string[]];

function parseEntry(raw: RawEntry): StreamEvent {
  const position = parseId(raw[0]);
  const fields = raw[1];
  let type = '';
  let data: Record<string, unknown> = {};
  let at = 0;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i];
    const value = fields[i + 1]!;
    if (name === 't') type = value;
    else if (name === 'd') data = JSON.parse(value) as Record<string, unknown>;
    else if (name === 'a') at = Number(value);
  }
  return { attempt: position.attempt, seq: position.seq, type, data, at };
}

/**
 * Task events on Redis Streams, so a client can follow a task from any node and resume after the
 * node it used died. Each task has one stream whose entry ids are `attempt-seq` (the SSE id), kept
 * to about `maxLen` entries and expiring `ttlMs` after the task's last start or finish.
 *
 * Writes are queued and sent once per event-loop turn in one pipeline; consecutive text deltas of a
 * task in the same turn become one entry (its id is the last delta's). Readers on one node share
 * one blocking connection: a single XREAD follows every stream someone listens to.
 */
export class TaskEventStreams {
  readonly #redis: Redis;
  readonly #blocking: Redis;
  readonly #options: TaskEventStreamsOptions;
  #pending: PendingEntry[] = [];
  /** Index in #pending of each task's last entry this turn (for delta merging). */
  #lastPending = new Map<string, number>();
  #flushing: NodeJS.Immediate | undefined;
  readonly #followers = new Set<Follower>();
  #blockingId: number | undefined;
  #reading = false;
  #wake: (() => void) | undefined;
  #closed = false;
  /** XADDs Redis refused (an older attempt writing after its task moved on): dropped. */
  rejected = 0;

  constructor(redis: Redis, blocking: Redis, options: TaskEventStreamsOptions) {
    this.#redis = redis;
    this.#blocking = blocking;
    this.#options = options;
    blocking.on('ready', () => {
      this.#blockingId = undefined;
    });
  }

  key(taskId: string): string {
    return `${this.#options.prefix}events:${taskId}`;
  }

  /** Queues an event for the next pipeline. */
  append(taskId: string, event: StreamEvent): void {
    if (this.#closed) return;
    const index = this.#lastPending.get(taskId);
    const previous = index === undefined ? undefined : this.#pending[index];
    if (
      previous !== undefined &&
      event.type === 'llm.delta' &&
      previous.event.type === 'llm.delta' &&
      previous.event.attempt === event.attempt
    ) {
      if (!previous.merged) {
        previous.event = { ...previous.event, data: { ...previous.event.data } };
        previous.merged = true;
      }
      previous.event.data.text = (previous.event.data.text as string) + (event.data.text as string);
      previous.event.seq = event.seq;
      previous.event.at = event.at;
      return;
    }
    this.#lastPending.set(taskId, this.#pending.length);
    this.#pending.push({ key: this.key(taskId), event, merged: false });
    this.#flushing ??= setImmediate(flushStreams, this);
  }

  /** Sends every queued event now. */
  async flush(): Promise<void> {
    if (this.#flushing !== undefined) clearImmediate(this.#flushing);
    this.#flushing = undefined;
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    this.#lastPending = new Map();
    const pipeline = this.#redis.pipeline();
    const { maxLen, ttlMs } = this.#options;
    for (const { key, event } of pending) {
      pipeline.xadd(
        key,
        'MAXLEN',
        '~',
        maxLen,
        entryId(event),
        't',
        event.type,
        'd',
        JSON.stringify(event.data),
        'a',
        event.at,
      );
      if (REFRESHING.has(event.type)) pipeline.pexpire(key, ttlMs);
    }
    const results = await pipeline.exec();
    for (const [err] of results ?? []) if (err !== null) this.rejected++;
  }

  /** The id of the stream's newest entry, if the stream exists. */
  async last(taskId: string): Promise<StreamPosition | undefined> {
    const entries = (await this.#redis.xrevrange(this.key(taskId), '+', '-', 'COUNT', 1)) as RawEntry[];
    return entries[0] === undefined ? undefined : parseId(entries[0][0]);
  }

  /**
   * The events after `from`. A position of an earlier attempt than the stream's newest replays the
   * newest attempt from its start (as a single node does for a restarted task).
   */
  async read(taskId: string, from: StreamPosition): Promise<StreamBacklog> {
    const key = this.key(taskId);
    const [newest, oldest] = (await this.#redis
      .pipeline()
      .xrevrange(key, '+', '-', 'COUNT', 1)
      .xrange(key, '-', '+', 'COUNT', 1)
      .exec()) as [Error | null, RawEntry[]][];
    const last = newest?.[1]?.[0];
    if (last === undefined) return { exists: false, events: [], gap: false, position: from };
    const current = parseId(last[0]);
    const start = from.attempt < current.attempt ? { attempt: current.attempt, seq: 0 } : from;
    const first = parseId(oldest![1][0]![0]);
    const gap = first.seq > 1 && after(first, { attempt: start.attempt, seq: start.seq + 1 });
    const raw = (await this.#redis.xrange(key, `(${entryId(start)}`, '+')) as RawEntry[];
    const events = raw.map(parseEntry);
    const end = events[events.length - 1];
    return { exists: true, events, gap, position: end === undefined ? start : end };
  }

  /** Delivers the stream's entries after `position` as they are written; returns the unsubscribe. */
  follow(taskId: string, position: StreamPosition, listener: (event: StreamEvent) => void): () => void {
    const follower: Follower = { key: this.key(taskId), position, listener };
    this.#followers.add(follower);
    this.#restartRead();
    return () => {
      this.#followers.delete(follower);
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush().catch(() => {});
    this.#closed = true;
    this.#followers.clear();
    this.#wake?.();
  }

  /** Makes the reader include a new follower: wakes it, or interrupts its XREAD. */
  #restartRead(): void {
    if (!this.#reading) {
      this.#reading = true;
      void this.#readLoop();
      return;
    }
    if (this.#wake !== undefined) {
      this.#wake();
      return;
    }
    if (this.#blockingId !== undefined) this.#redis.client('UNBLOCK', this.#blockingId).catch(() => {});
  }

  async #readLoop(): Promise<void> {
    while (!this.#closed) {
      if (this.#followers.size === 0) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = undefined;
        continue;
      }
      const from = new Map<string, StreamPosition>();
      for (const follower of this.#followers) {
        const known = from.get(follower.key);
        if (known === undefined || after(known, follower.position)) from.set(follower.key, follower.position);
      }
      let result: [string, RawEntry[]][] | null;
      try {
        if (this.#blockingId === undefined) this.#blockingId = (await this.#blocking.client('ID')) as number;
        result = (await this.#blocking.xread(
          'COUNT',
          1000,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          ...from.keys(),
          ...[...from.values()].map(entryId),
        )) as [string, RawEntry[]][] | null;
      } catch {
        if (this.#closed) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
        continue;
      }
      if (result === null) continue;
      for (const [key, entries] of result) {
        for (const raw of entries) {
          const event = parseEntry(raw);
          for (const follower of this.#followers) {
            if (follower.key !== key || !after(event, follower.position)) continue;
            follower.position = event;
            try {
              follower.listener(event);
            } catch {
              this.#followers.delete(follower);
            }
          }
        }
      }
    }
    this.#reading = false;
  }
}

function flushStreams(streams: TaskEventStreams): void {
  streams.flush().catch(() => {});
}
