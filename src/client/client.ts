import { createParser } from 'eventsource-parser';
import type {
  AgentJson,
  ApiErrorBody,
  CreateTaskRequest,
  HealthJson,
  ListTasksQuery,
  MessageJson,
  Page,
  TaskEvent,
  TaskEventType,
  TaskJson,
  TaskOptions,
} from './types.js';

export interface AgentdClientOptions {
  /** The server's origin, e.g. `http://127.0.0.1:8080` (a trailing `/v1` is accepted). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>`. */
  apiKey?: string | undefined;
  /** Retries of a retryable failure (429, 503, connection errors); default 2. */
  maxRetries?: number;
  /** The longest `Retry-After` honoured; a longer one fails at once (default 30 s). */
  maxRetryAfterMs?: number;
  /** Reconnections of an event stream that broke before the task finished (default 10). */
  maxReconnects?: number;
  /** Extra headers for every request. */
  headers?: Record<string, string>;
  /** A `fetch` implementation (default: the global one). */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  signal?: AbortSignal | undefined;
}

/** An error answer of the API, with agentd's stable code. */
export class AgentdApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly details: Record<string, unknown> | undefined;
  /** The task, when a synchronous run failed. */
  readonly task: TaskJson | undefined;

  constructor(status: number, body: ApiErrorBody, retryAfterMs: number | undefined, task?: TaskJson) {
    super(body.message);
    this.name = 'AgentdApiError';
    this.status = status;
    this.code = body.code;
    this.retryable = body.retryable;
    // The body's milliseconds are more precise than the header's whole seconds.
    this.retryAfterMs = body.retry_after_ms ?? retryAfterMs;
    this.details = body.details;
    this.task = task;
  }
}

/** The server could not be reached (after retries), or answered something that is not the API. */
export class AgentdConnectionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AgentdConnectionError';
  }
}

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);

/**
 * A typed client for agentd's HTTP API. Retryable failures are retried with the server's
 * `Retry-After` (or backoff); task creation carries an idempotency key, so a retry never runs a
 * task twice. Event streams are async iterators that resume with `Last-Event-ID` after a break.
 */
export class AgentdClient {
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #maxRetries: number;
  readonly #maxRetryAfterMs: number;
  readonly #maxReconnects: number;
  readonly #fetch: typeof fetch;

  constructor(options: AgentdClientOptions) {
    this.#base = options.baseUrl.replace(/\/+$/, '').replace(/\/v1$/, '');
    this.#headers = { ...options.headers };
    if (options.apiKey !== undefined) this.#headers.authorization = `Bearer ${options.apiKey}`;
    this.#maxRetries = options.maxRetries ?? 2;
    this.#maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
    this.#maxReconnects = options.maxReconnects ?? 10;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** Creates a task; with `wait`, answers once it finished (or the wait ran out). */
  createTask(
    request: CreateTaskRequest,
    options: RequestOptions & { idempotencyKey?: string } = {},
  ): Promise<TaskJson> {
    const key = options.idempotencyKey ?? crypto.randomUUID();
    return this.#json('POST', '/v1/tasks', request, options.signal, { 'idempotency-key': key });
  }

  getTask(id: string, options: RequestOptions = {}): Promise<TaskJson> {
    return this.#json('GET', `/v1/tasks/${encodeURIComponent(id)}`, undefined, options.signal);
  }

  listTasks(query: ListTasksQuery = {}, options: RequestOptions = {}): Promise<Page<TaskJson>> {
    return this.#json('GET', `/v1/tasks${queryString(query)}`, undefined, options.signal);
  }

  cancelTask(id: string, options: RequestOptions = {}): Promise<TaskJson> {
    return this.#json('POST', `/v1/tasks/${encodeURIComponent(id)}/cancel`, undefined, options.signal);
  }

  /**
   * Runs an agent and answers with the finished task. A failed run rejects with an
   * `AgentdApiError` whose `task` holds any partial output. Not retried: a run is not idempotent.
   */
  runAgent(name: string, request: TaskOptions, options: RequestOptions = {}): Promise<TaskJson> {
    return this.#json('POST', `/v1/agents/${encodeURIComponent(name)}/run`, request, options.signal, {}, 0);
  }

  listAgents(options: RequestOptions = {}): Promise<AgentJson[]> {
    return this.#json<Page<AgentJson>>('GET', '/v1/agents', undefined, options.signal).then(
      (page) => page.data,
    );
  }

  sessionMessages(
    sessionId: string,
    query: { after?: number; limit?: number } = {},
    options: RequestOptions = {},
  ): Promise<Page<MessageJson>> {
    return this.#json(
      'GET',
      `/v1/sessions/${encodeURIComponent(sessionId)}/messages${queryString(query)}`,
      undefined,
      options.signal,
    );
  }

  /** Runs one tool directly (it must be listed in `tools.direct_execute`). */
  executeTool(
    name: string,
    args: Record<string, unknown>,
    options: RequestOptions & { timeout_ms?: number; agent?: string } = {},
  ): Promise<Record<string, unknown>> {
    const body: Record<string, unknown> = { arguments: args };
    if (options.timeout_ms !== undefined) body.timeout_ms = options.timeout_ms;
    if (options.agent !== undefined) body.agent = options.agent;
    return this.#json('POST', `/v1/tools/${encodeURIComponent(name)}/execute`, body, options.signal, {}, 0);
  }

  health(options: RequestOptions = {}): Promise<HealthJson> {
    return this.#json('GET', '/healthz', undefined, options.signal);
  }

  /**
   * A task's events from `after` (an event id) on, ending with `task.completed`. A broken
   * connection is resumed with `Last-Event-ID`, so no event is lost or repeated.
   */
  async *events(
    taskId: string,
    options: RequestOptions & { after?: string } = {},
  ): AsyncGenerator<TaskEvent> {
    let lastId = options.after;
    let reconnects = 0;
    const path = `/v1/tasks/${encodeURIComponent(taskId)}/events`;
    for (;;) {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (lastId !== undefined) headers['last-event-id'] = lastId;
      let response: Response;
      try {
        response = await this.#send('GET', path, undefined, options.signal, headers, this.#maxRetries);
      } catch (err) {
        if (err instanceof AgentdConnectionError && reconnects < this.#maxReconnects) {
          reconnects++;
          await sleep(backoff(reconnects), options.signal);
          continue;
        }
        throw err;
      }
      const queue: TaskEvent[] = [];
      const parser = createParser({
        onEvent: (event) => {
          if (event.id !== undefined) lastId = event.id;
          queue.push({
            id: event.id ?? '',
            type: (event.event ?? 'message') as TaskEventType,
            data: event.data === '' ? {} : (JSON.parse(event.data) as Record<string, unknown>),
          });
        },
      });
      let finished = false;
      try {
        const decoder = new TextDecoder();
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          parser.feed(decoder.decode(chunk, { stream: true }));
          while (queue.length > 0) {
            const event = queue.shift()!;
            reconnects = 0;
            yield event;
            if (event.type === 'task.completed') {
              finished = true;
              return;
            }
          }
        }
      } catch (err) {
        if (options.signal?.aborted) throw options.signal.reason;
        if (reconnects >= this.#maxReconnects)
          throw new AgentdConnectionError('the event stream broke', { cause: err });
      } finally {
        if (!finished) await response.body?.cancel().catch(() => {});
      }
      if (options.signal?.aborted) throw options.signal.reason;
      // The stream ended before the task did (a restart, a slow-client cut-off): resume.
      reconnects++;
      if (reconnects > this.#maxReconnects)
        throw new AgentdConnectionError('the event stream keeps breaking');
      await sleep(backoff(reconnects), options.signal);
    }
  }

  /** Creates a task and streams its events (the resumable way to watch a run live). */
  async *stream(
    request: CreateTaskRequest,
    options: RequestOptions = {},
  ): AsyncGenerator<TaskEvent, TaskJson> {
    const task = await this.createTask({ ...request, wait: false }, options);
    for await (const event of this.events(task.id, options)) yield event;
    return this.getTask(task.id, options);
  }

  async #json<T>(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
    headers: Record<string, string> = {},
    retries = this.#maxRetries,
  ): Promise<T> {
    const response = await this.#send(method, path, body, signal, headers, retries);
    return (await response.json()) as T;
  }

  /** Sends a request, retrying retryable failures; resolves with a 2xx response. */
  async #send(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
    headers: Record<string, string>,
    retries: number,
  ): Promise<Response> {
    const init: RequestInit = {
      method,
      headers: {
        ...this.#headers,
        ...headers,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal ?? null,
    };
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.#fetch(`${this.#base}${path}`, init);
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (attempt >= retries)
          throw new AgentdConnectionError(`cannot reach agentd at ${this.#base}: ${(err as Error).message}`, {
            cause: err,
          });
        await sleep(backoff(attempt + 1), signal);
        continue;
      }
      if (response.ok) return response;
      const error = await errorOf(response);
      const wait = error.retryAfterMs ?? backoff(attempt + 1);
      if (
        attempt >= retries ||
        !RETRYABLE_STATUS.has(response.status) ||
        !error.retryable ||
        wait > this.#maxRetryAfterMs
      )
        throw error;
      await sleep(wait, signal);
    }
  }
}

async function errorOf(response: Response): Promise<AgentdApiError> {
  const retryAfter = response.headers.get('retry-after');
  const seconds = retryAfter === null ? Number.NaN : Number(retryAfter);
  const retryAfterMs = Number.isFinite(seconds) ? seconds * 1000 : undefined;
  const text = await response.text();
  try {
    const parsed = JSON.parse(text) as { error?: ApiErrorBody; task?: TaskJson };
    if (parsed.error !== undefined && typeof parsed.error.code === 'string')
      return new AgentdApiError(response.status, parsed.error, retryAfterMs, parsed.task);
  } catch {
    // Not the API's JSON: described below.
  }
  return new AgentdApiError(
    response.status,
    {
      code: 'HTTP_ERROR',
      message: `HTTP ${response.status}: ${text.slice(0, 200)}`,
      retryable: response.status >= 500,
    },
    retryAfterMs,
  );
}

function queryString(query: object): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

/** Exponential backoff with full jitter: up to 100 ms, 200 ms, 400 ms … capped at 5 s. */
function backoff(attempt: number): number {
  return Math.random() * Math.min(5000, 100 * 2 ** (attempt - 1));
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
