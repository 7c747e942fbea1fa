import type { TaskTicket } from '../admission/index.js';
import type { AgentdError, ErrorBody } from '../errors.js';
import { Cancellation } from '../lib/cancellation.js';
import type { RouterSink } from '../llm/index.js';
import type { Span } from '../observability/index.js';
import type { TaskRecord, TaskStatus } from '../store/index.js';
import { TERMINAL_STATUSES } from '../store/index.js';
import { TaskEventLog } from './events.js';

/**
 * A task in this process: its record (what is stored and returned), its event log, and the one
 * cancellation that stops the provider request, the tools and any backoff.
 */
export class Task implements RouterSink {
  readonly record: TaskRecord;
  readonly events: TaskEventLog;
  readonly cancellation = new Cancellation();
  /** Milliseconds spent waiting on providers and tools: the rest is agentd's overhead. */
  providerMs = 0;
  toolMs = 0;
  /** The deadline of the whole task, set when it starts (for the timeout's message). */
  timeoutMs = 0;
  /** The admission this task holds while it runs (slots, and the buckets its usage is charged to). */
  ticket: TaskTicket | undefined;
  /** Tracing: the client's `traceparent`, and this task's span while it runs. */
  traceparent: string | undefined;
  span: Span | undefined;
  #waiters: (() => void)[] | undefined;
  /** What `wait()` without a timeout returns: one promise for every such waiter. */
  #finishedPromise: Promise<boolean> | undefined;
  #recordPromise: Promise<TaskRecord> | undefined;

  constructor(record: TaskRecord, eventBuffer: number) {
    this.record = record;
    this.events = new TaskEventLog(eventBuffer);
  }

  get id(): string {
    return this.record.id;
  }

  get status(): TaskStatus {
    return this.record.status;
  }

  get finished(): boolean {
    return TERMINAL_STATUSES.has(this.record.status);
  }

  /** A standard AbortSignal for this task (created on first use). */
  get signal(): AbortSignal {
    return this.cancellation.signal;
  }

  // RouterSink: streamed model output becomes task events.
  onText(text: string): void {
    this.events.appendDelta(text);
  }

  onDiscard(error: AgentdError, model: string): void {
    this.events.append('llm.discarded', { model, code: error.code, reason: error.message });
  }

  /** Moves to running and emits `task.started` with `data` (the agent's shared event data). */
  markRunning(data: Readonly<{ agent: string }>): void {
    this.record.status = 'running';
    this.record.started_at = Date.now();
    this.events.append('task.started', data);
  }

  /** Moves to a terminal status, emits `task.completed` and wakes waiters. Idempotent. */
  finish(status: TaskStatus, result: string | null, error: ErrorBody | null): void {
    if (this.finished) return;
    const record = this.record;
    record.status = status;
    record.result = result;
    record.error = error;
    record.finished_at = Date.now();
    record.event_seq = this.events.lastSeq + 1;
    this.events.append('task.completed', completionData(record));
    this.#wake();
  }

  /**
   * Takes the final state another node stored for this task (it ran there) and wakes waiters.
   * Ignored unless `final` is finished and this task is not.
   */
  adopt(final: TaskRecord): void {
    if (this.finished || !TERMINAL_STATUSES.has(final.status)) return;
    Object.assign(this.record, final);
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = undefined;
    // Finished, `wait` and `whenFinished` answer without them; a recent task need not keep them.
    this.#finishedPromise = undefined;
    this.#recordPromise = undefined;
    if (waiters !== undefined) for (const wake of waiters) wake();
  }

  /** Resolves with the record when the task finishes. */
  whenFinished(): Promise<TaskRecord> {
    if (this.finished) return Promise.resolve(this.record);
    this.#recordPromise ??= new Promise((resolve) => this.#addWaiter(() => resolve(this.record)));
    return this.#recordPromise;
  }

  /** Resolves when the task finishes, or after `timeoutMs` if given (true if finished). */
  wait(timeoutMs?: number): Promise<boolean> {
    if (this.finished) return Promise.resolve(true);
    if (timeoutMs === undefined) {
      this.#finishedPromise ??= new Promise((resolve) => this.#addWaiter(() => resolve(true)));
      return this.#finishedPromise;
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#unwait(wake);
        resolve(false);
      }, timeoutMs);
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#addWaiter(wake);
    });
  }

  #addWaiter(wake: () => void): void {
    if (this.#waiters === undefined) this.#waiters = [wake];
    else this.#waiters.push(wake);
  }

  #unwait(wake: () => void): void {
    const index = this.#waiters?.indexOf(wake) ?? -1;
    if (index !== -1) this.#waiters!.splice(index, 1);
  }
}

/** The data of a `task.completed` event: the outcome without the input. */
export function completionData(record: TaskRecord): Record<string, unknown> {
  return {
    status: record.status,
    result: record.result,
    error: record.error,
    model: record.model,
    usage: record.usage,
    cost_usd: record.cost_usd,
    iterations: record.iterations,
    tool_calls: record.tool_calls,
    partial: record.partial,
  };
}
