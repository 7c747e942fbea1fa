import type { ValidateFunction } from 'ajv';
import type { AgentdError, ErrorBody } from '../errors.js';
import type { Runtime } from '../runtime/index.js';
import type { TaskRecord } from '../store/index.js';
import type { DirectExchange, DirectRoute } from './direct-routes.js';
import { retryAfterSeconds, statusOfBody } from './errors.js';
import { headerValue, withUser } from './identity.js';
import { type RunAgentRequest, submitRequest, taskJson } from './schemas.js';
import { streamTaskEvents } from './sse.js';

/** What a finished synchronous run answers: the task, or its error envelope and status. */
export interface FinishedRunReply {
  status: number;
  /** `Retry-After` in seconds, when the task's error carries a retry hint. */
  retryAfter: string | undefined;
  body: ReturnType<typeof taskJson> | { error: ErrorBody; task: ReturnType<typeof taskJson> };
}

/** The reply to a finished `POST /v1/agents/{name}/run` (shared by both ways the route is served). */
export function finishedRunReply(record: TaskRecord): FinishedRunReply {
  if (record.status === 'succeeded') return { status: 200, retryAfter: undefined, body: taskJson(record) };
  const error = record.error!;
  return {
    status: statusOfBody(error),
    retryAfter: retryAfterSeconds(error.retry_after_ms),
    body: { error, task: taskJson(record) },
  };
}

const RUN_PREFIX = '/v1/agents/';
const RUN_SUFFIX = '/run';

/**
 * `POST /v1/agents/{name}/run` served by DirectRoutes: the one-call hot path (discuss/0008). Its
 * answers are the Fastify route's: the task JSON, `x-agentd-overhead-ms`, `retry-after`, hang-up
 * cancellation and `stream: true`.
 */
export class RunRoute implements DirectRoute<RunAgentRequest> {
  readonly #runtime: Runtime;
  readonly validateBody: ValidateFunction<RunAgentRequest>;

  constructor(runtime: Runtime, validateBody: ValidateFunction<RunAgentRequest>) {
    this.#runtime = runtime;
    this.validateBody = validateBody;
  }

  /** The agent name of a plain `/v1/agents/{name}/run` path (no query, no escapes), else undefined. */
  match(url: string): string | undefined {
    if (!url.startsWith(RUN_PREFIX) || !url.endsWith(RUN_SUFFIX)) return undefined;
    const name = url.slice(RUN_PREFIX.length, url.length - RUN_SUFFIX.length);
    // Anything the router would decode or reject (escapes, a query, another segment, an empty or
    // over-long name) is left to it.
    if (name.length === 0 || name.length > 64) return undefined;
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c === 0x2f || c === 0x25 || c === 0x3f || c === 0x23 || c === 0x3b) return undefined;
    }
    return name;
  }

  errorBody(error: AgentdError): { error: ErrorBody } {
    return { error: error.toBody() };
  }

  async serve(exchange: DirectExchange, body: RunAgentRequest): Promise<void> {
    const runtime = this.#runtime;
    const req = exchange.req;
    const identity = withUser(exchange.identity, body.user_id);
    const { task } = await runtime.submit(
      submitRequest(exchange.param, body, identity, headerValue(req.headers.traceparent)),
    );
    const res = exchange.res;
    if (body.stream === true) {
      await streamTaskEvents(runtime, req, res, task.id, identity.tenantId, undefined);
      return;
    }
    // A synchronous caller that hangs up will never read the answer: stop the work (see the
    // Fastify route: the response's `close` before the answer was written is a hang-up).
    res.once('close', () => {
      if (!task.finished && !res.writableEnded) void runtime.cancel(task.id, identity.tenantId);
    });
    await task.wait();
    const reply = finishedRunReply(task.record);
    const overhead = performance.now() - exchange.startedAt - task.providerMs - task.toolMs;
    exchange.reply(reply.status, JSON.stringify(reply.body), reply.retryAfter, overhead.toFixed(3));
  }
}
