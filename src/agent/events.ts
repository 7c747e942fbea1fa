import { RingBuffer } from '../lib/ring-buffer.js';

/**
 * Event types a task emits, in order of a typical run:
 * task.queued → task.started → (llm.started → llm.delta* → [llm.discarded] → llm.completed
 * → (tool.started → tool.completed)*)* → task.completed
 */
export type TaskEventType =
  | 'task.queued'
  | 'task.started'
  | 'llm.started'
  | 'llm.delta'
  | 'llm.discarded'
  | 'llm.stepped_down'
  | 'llm.completed'
  | 'tool.started'
  | 'tool.completed'
  | 'memory.recalled'
  | 'memory.extracted'
  | 'memory.extraction_failed'
  | 'session.compacted'
  | 'session.compaction_failed'
  | 'task.completed';

export interface TaskEvent {
  /** 1-based, gap-free per task; the SSE `id:`. */
  seq: number;
  type: TaskEventType;
  data: Record<string, unknown>;
  /** Milliseconds since the epoch. */
  at: number;
  /** The run the event belongs to, on events read from a shared (Redis) stream. */
  attempt?: number;
}

export type TaskEventListener = (event: TaskEvent) => void;

export interface Subscription {
  /** Buffered events after the requested sequence number, oldest first. */
  backlog: TaskEvent[];
  /** True when events after the requested sequence number were already evicted. */
  gap: boolean;
  unsubscribe(): void;
}

/**
 * A task's event stream: a bounded ring buffer for resume plus live listeners. While nobody is
 * listening, consecutive text deltas are merged into one event, so a long answer streamed to no
 * one costs one event rather than one per token; merged events were never delivered, so resume
 * by sequence number stays exact.
 */
export class TaskEventLog {
  readonly #buffer: RingBuffer<TaskEvent>;
  #seq = 0;
  #delivered = 0;
  /** Live listeners; undefined until the first subscription (most tasks have none). */
  #listeners: TaskEventListener[] | undefined;
  #closed = false;
  /**
   * The pieces of the newest delta while more are merged into it, joined once when it is read or
   * closed: a string grown by `+` per piece is a rope of one node per piece, which every finished
   * task kept for replay (and which scavenges copied) until it was evicted.
   */
  #merged: string[] | undefined;

  constructor(capacity: number) {
    this.#buffer = new RingBuffer(capacity);
  }

  get lastSeq(): number {
    return this.#seq;
  }

  /** True after the final event. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Continues numbering after `seq`: a node that takes over a task whose earlier events another
   * node wrote (to a shared stream) numbers its own after them. Only before the first append.
   */
  resumeAt(seq: number): void {
    if (this.#seq === 0) this.#seq = seq;
  }

  append(type: TaskEventType, data: Record<string, unknown>): TaskEvent {
    if (this.#merged !== undefined) this.#joinMerged();
    const event: TaskEvent = { seq: ++this.#seq, type, data, at: Date.now() };
    this.#buffer.push(event);
    if (type === 'task.completed') this.#closed = true;
    this.#deliver(event);
    return event;
  }

  /** Appends streamed text, merging into the previous undelivered delta when possible. */
  appendDelta(text: string): void {
    if (this.#listeners === undefined || this.#listeners.length === 0) {
      const last = this.#buffer.last();
      if (last !== undefined && last.type === 'llm.delta' && last.seq > this.#delivered) {
        if (this.#merged === undefined) this.#merged = [last.data.text as string, text];
        else this.#merged.push(text);
        return;
      }
    }
    this.append('llm.delta', { text });
  }

  /** Registers a listener and returns, atomically, the buffered events after `afterSeq`. */
  subscribe(afterSeq: number, listener: TaskEventListener): Subscription {
    if (this.#merged !== undefined) this.#joinMerged();
    const backlog: TaskEvent[] = [];
    let oldest = 0;
    for (const event of this.#buffer) {
      if (oldest === 0) oldest = event.seq;
      if (event.seq > afterSeq) backlog.push(event);
    }
    const last = backlog[backlog.length - 1];
    if (last !== undefined && last.seq > this.#delivered) this.#delivered = last.seq;
    const gap = oldest > afterSeq + 1;
    if (!this.#closed) {
      if (this.#listeners === undefined) this.#listeners = [listener];
      else this.#listeners.push(listener);
    }
    return { backlog, gap, unsubscribe: () => this.#remove(listener) };
  }

  #joinMerged(): void {
    this.#buffer.last()!.data.text = this.#merged!.join('');
    this.#merged = undefined;
  }

  #remove(listener: TaskEventListener): void {
    const index = this.#listeners?.indexOf(listener) ?? -1;
    if (index !== -1) this.#listeners!.splice(index, 1);
  }

  #deliver(event: TaskEvent): void {
    const listeners = this.#listeners;
    if (listeners === undefined || listeners.length === 0) return;
    this.#delivered = event.seq;
    // One listener (the usual SSE client): no copy of the list.
    if (listeners.length === 1) {
      const listener = listeners[0]!;
      try {
        listener(event);
      } catch {
        this.#remove(listener);
      }
      if (this.#closed) this.#listeners = undefined;
      return;
    }
    for (const listener of listeners.slice()) {
      try {
        listener(event);
      } catch {
        // A listener that throws (a broken socket) must not break the task.
        this.#remove(listener);
      }
    }
    if (this.#closed) this.#listeners = undefined;
  }
}
