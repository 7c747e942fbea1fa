import { Ajv } from 'ajv';
import type { WebSocket } from 'ws';
import type { Identity } from '../admission/index.js';
import { type AgentdError, InvalidRequestError, NotFoundError, toAgentdError } from '../errors.js';
import type { EventStream, Runtime } from '../runtime/index.js';
import { toHttpError } from './errors.js';
import { withUser } from './identity.js';
import { CreateTaskBody, type CreateTaskRequest, submitRequest, taskJson } from './schemas.js';
import { formatEventId, parseEventId } from './sse.js';

/** Close code for a client that fell more than `max_buffered_bytes` behind (it may reconnect and resume). */
export const SLOW_CONSUMER_CLOSE = 4008;
/** Close code for a client that stopped answering pings. */
export const PING_TIMEOUT_CLOSE = 4009;

const validateTask = new Ajv({
  removeAdditional: false,
  useDefaults: true,
  strict: false,
  coerceTypes: false,
}).compile(CreateTaskBody);

export interface SessionLimits {
  maxBufferedBytes: number;
  maxSubscriptions: number;
}

interface Follow {
  stream: EventStream | undefined;
  stopped: boolean;
}

/**
 * One WebSocket connection: many tasks submitted, followed and cancelled over it. Messages are
 * JSON objects with a `type`; requests carry a client-chosen `id` echoed in the answer. Events
 * of followed tasks arrive as `{type:"event"}` with the same ids as SSE, so a client resumes
 * after a reconnect with `subscribe` and `after`.
 */
export class TaskSocket {
  readonly #runtime: Runtime;
  readonly #ws: WebSocket;
  readonly #identity: Identity;
  readonly #limits: SessionLimits;
  readonly #follows = new Map<string, Follow>();
  #closed = false;
  /** Set by the ping sweep; cleared by a pong. */
  awaitingPong = false;

  /** Called once when the connection closes or starts closing. */
  onClosed: (() => void) | undefined;

  constructor(runtime: Runtime, ws: WebSocket, identity: Identity, limits: SessionLimits) {
    this.#runtime = runtime;
    this.#ws = ws;
    this.#identity = identity;
    this.#limits = limits;
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.#sendError(undefined, new InvalidRequestError('send JSON text messages'));
        return;
      }
      void this.#onMessage(data.toString());
    });
    ws.on('pong', () => {
      this.awaitingPong = false;
    });
    ws.on('close', () => this.#stopAll());
    ws.on('error', () => this.#stopAll());
  }

  /** A keep-alive ping (the sweep closes connections that miss the pong). */
  ping(): void {
    if (!this.#closed) this.#ws.ping();
  }

  /** Closes the connection with a code; everything it followed stops. */
  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#stopAll();
    this.#ws.close(code, reason);
    // A client too slow to read its backlog may never read the close frame either.
    setTimeout(() => this.#ws.terminate(), 5000).unref();
  }

  async #onMessage(text: string): Promise<void> {
    let message: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
        throw new Error('not an object');
      message = parsed as Record<string, unknown>;
    } catch {
      this.#sendError(undefined, new InvalidRequestError('a message must be a JSON object'));
      return;
    }
    const id = typeof message.id === 'string' || typeof message.id === 'number' ? message.id : undefined;
    try {
      switch (message.type) {
        case 'submit':
          await this.#submit(id, message);
          return;
        case 'subscribe':
          await this.#subscribe(
            id,
            taskIdOf(message),
            typeof message.after === 'string' ? message.after : undefined,
          );
          return;
        case 'unsubscribe': {
          const taskId = taskIdOf(message);
          this.#stop(taskId);
          this.#send({ type: 'unsubscribed', id, task_id: taskId });
          return;
        }
        case 'cancel': {
          const taskId = taskIdOf(message);
          const record = await this.#runtime.cancel(taskId, this.#identity.tenantId);
          if (record === undefined)
            throw new NotFoundError(`no task "${taskId}"`, { details: { field: 'task_id' } });
          this.#send({ type: 'cancelled', id, task: taskJson(record) });
          return;
        }
        case 'get': {
          const taskId = taskIdOf(message);
          const record = await this.#runtime.getTask(taskId, this.#identity.tenantId);
          if (record === undefined)
            throw new NotFoundError(`no task "${taskId}"`, { details: { field: 'task_id' } });
          this.#send({ type: 'task', id, task: taskJson(record) });
          return;
        }
        case 'ping':
          this.#send({ type: 'pong', id });
          return;
        default:
          throw new InvalidRequestError(
            '`type` must be one of submit, subscribe, unsubscribe, cancel, get, ping',
            { details: { field: 'type' } },
          );
      }
    } catch (err) {
      this.#sendError(id, toAgentdError(err));
    }
  }

  async #submit(id: unknown, message: Record<string, unknown>): Promise<void> {
    const { type: _type, id: _id, subscribe, ...fields } = message;
    if (!validateTask(fields)) {
      throw toHttpError(
        Object.assign(new Error('invalid message'), {
          validation: validateTask.errors,
          validationContext: 'message',
        }),
      );
    }
    const body = fields as unknown as CreateTaskRequest;
    const follow = subscribe !== false;
    if (follow) this.#checkRoom();
    const submission = submitRequest(body.agent, body, withUser(this.#identity, body.user_id), undefined);
    submission.idempotencyKey =
      typeof message.idempotency_key === 'string' ? message.idempotency_key : undefined;
    submission.priority = body.priority;
    submission.durable = true;
    const { task, created } = await this.#runtime.submit(submission);
    this.#send({ type: 'submitted', id, created, task: taskJson(task.record) });
    if (follow) await this.#subscribe(undefined, task.id, undefined);
  }

  async #subscribe(id: unknown, taskId: string, after: string | undefined): Promise<void> {
    if (this.#follows.has(taskId)) {
      this.#send({ type: 'subscribed', id, task_id: taskId });
      return;
    }
    this.#checkRoom();
    const follow: Follow = { stream: undefined, stopped: false };
    this.#follows.set(taskId, follow);
    let attempt = 1;
    // Live events may arrive before the backlog is known; they wait here until it is sent.
    let early: { seq: number; type: string; data: unknown }[] | undefined = [];
    const deliver = (event: { seq: number; type: string; data: unknown }): void => {
      if (follow.stopped) return;
      if (early !== undefined) {
        early.push(event);
        return;
      }
      this.#send({
        type: 'event',
        task_id: taskId,
        event_id: formatEventId(attempt, event.seq),
        event: event.type,
        data: event.data,
      });
      if (event.type === 'task.completed') this.#stop(taskId);
    };
    let stream: EventStream | undefined;
    try {
      stream = await this.#runtime.events(taskId, this.#identity.tenantId, parseEventId(after), deliver);
    } catch (err) {
      this.#follows.delete(taskId);
      throw err;
    }
    if (stream === undefined) {
      this.#follows.delete(taskId);
      throw new NotFoundError(`no task "${taskId}"`, { details: { field: 'task_id' } });
    }
    follow.stream = stream;
    if (follow.stopped) {
      stream.unsubscribe();
      return;
    }
    attempt = stream.attempt;
    if (id !== undefined) this.#send({ type: 'subscribed', id, task_id: taskId });
    if (stream.gap)
      this.#send({
        type: 'event',
        task_id: taskId,
        event_id: formatEventId(attempt, 0),
        event: 'stream.gap',
        data: {},
      });
    const live = early;
    early = undefined;
    for (const event of stream.backlog) deliver(event);
    for (const event of live) deliver(event);
    if (stream.finished) this.#stop(taskId);
  }

  #checkRoom(): void {
    if (this.#follows.size >= this.#limits.maxSubscriptions) {
      throw new InvalidRequestError(
        `this connection already follows ${this.#limits.maxSubscriptions} tasks (server.websocket.max_subscriptions)`,
        { details: { field: 'task_id', limit: 'max_subscriptions' } },
      );
    }
  }

  #stop(taskId: string): void {
    const follow = this.#follows.get(taskId);
    if (follow === undefined) return;
    follow.stopped = true;
    follow.stream?.unsubscribe();
    this.#follows.delete(taskId);
  }

  #stopAll(): void {
    if (!this.#closed) {
      this.#closed = true;
      this.onClosed?.();
    }
    for (const taskId of [...this.#follows.keys()]) this.#stop(taskId);
  }

  #send(message: Record<string, unknown>): void {
    if (this.#closed) return;
    this.#ws.send(JSON.stringify(message));
    if (this.#ws.bufferedAmount > this.#limits.maxBufferedBytes) {
      this.close(
        SLOW_CONSUMER_CLOSE,
        `slow consumer: more than ${this.#limits.maxBufferedBytes} bytes unread; reconnect and resume`,
      );
    }
  }

  #sendError(id: unknown, error: AgentdError): void {
    this.#send({ type: 'error', id, error: error.toBody() });
  }
}

function taskIdOf(message: Record<string, unknown>): string {
  const taskId = message.task_id;
  if (typeof taskId !== 'string' || taskId === '' || taskId.length > 64) {
    throw new InvalidRequestError('`task_id` must be a task id', { details: { field: 'task_id' } });
  }
  return taskId;
}
