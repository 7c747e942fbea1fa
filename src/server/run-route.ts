import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { ValidateFunction } from 'ajv';
import type { FastifyBodyParser } from 'fastify';
import { type ApiKeys, type Identity, OPEN_IDENTITY } from '../admission/index.js';
import { type AgentdError, type ErrorBody, InternalError, InvalidRequestError } from '../errors.js';
import type { Logger } from '../observability/index.js';
import type { Runtime } from '../runtime/index.js';
import type { TaskRecord } from '../store/index.js';
import { presentedKey } from './auth.js';
import { bodyTooLarge, statusOfBody, toHttpError, validationFailure } from './errors.js';
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

/** A retry hint in milliseconds as a `Retry-After` header (whole seconds, at least 1). */
export function retryAfterSeconds(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : String(Math.max(1, Math.ceil(ms / 1000)));
}

const RUN_PREFIX = '/v1/agents/';
const RUN_SUFFIX = '/run';
const JSON_TYPE = 'application/json; charset=utf-8';

/** The agent name of a plain `/v1/agents/{name}/run` path (no query, no escapes), else undefined. */
function runTarget(url: string): string | undefined {
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

/** True for `application/json`, optionally with `charset=utf-8`: the only bodies taken here. */
function plainJson(type: string | undefined): boolean {
  return type === 'application/json' || type === JSON_TYPE || type === 'application/json;charset=utf-8';
}

export interface RunRouteOptions {
  runtime: Runtime;
  keys: ApiKeys;
  log: Logger;
  bodyLimit: number;
  /** The route's body validator (the same compiled schema Fastify uses). */
  validateBody: ValidateFunction<RunAgentRequest>;
  /** Fastify's own JSON body parser (same errors, same prototype-poisoning checks). */
  parseJson: FastifyBodyParser<string>;
  /** Fastify's request handler: everything not taken here goes there, untouched. */
  fallback: (req: IncomingMessage, res: ServerResponse) => void;
}

/**
 * `POST /v1/agents/{name}/run` on `node:http` directly: the one-call hot path without Fastify's
 * request pipeline (routing, hooks, body parser, reply, serialiser), which measured about a
 * quarter of agentd's CPU per run (discuss/0008). It takes only requests it can answer exactly as
 * the Fastify route would — same authentication, body limit, JSON parser, validator, error bodies,
 * headers and hang-up handling; anything else (another content type, chunked bodies, escapes,
 * a missing or unknown API key, a closing server) is handed to Fastify before the body is read.
 */
export class RunRoute {
  readonly #options: RunRouteOptions;
  #closing = false;

  constructor(options: RunRouteOptions) {
    this.#options = options;
  }

  /** From now on every request goes to Fastify (which answers 503 while closing). */
  close(): void {
    this.#closing = true;
  }

  /** The server's request listener. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const name = this.#closing || req.method !== 'POST' ? undefined : runTarget(req.url ?? '');
    const headers = req.headers;
    if (
      name === undefined ||
      !plainJson(headers['content-type']) ||
      headers['content-length'] === undefined ||
      headers['transfer-encoding'] !== undefined ||
      Number(headers['content-length']) > this.#options.bodyLimit
    ) {
      this.#options.fallback(req, res);
      return;
    }
    const startedAt = performance.now();
    const enabled = this.#options.keys.enabled();
    if (enabled === false) new RunExchange(this.#options, req, res, name, startedAt, OPEN_IDENTITY);
    else if (enabled === true) this.#authenticate(req, res, name, startedAt, headers);
    else
      enabled.then(
        (on) => {
          if (on) this.#authenticate(req, res, name, startedAt, headers);
          else new RunExchange(this.#options, req, res, name, startedAt, OPEN_IDENTITY);
        },
        () => this.#options.fallback(req, res),
      );
  };

  /** A request with a known key runs here; without one (or on a lookup error) Fastify answers. */
  #authenticate(
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    startedAt: number,
    headers: IncomingHttpHeaders,
  ): void {
    const key = presentedKey(headers);
    if (key === undefined) {
      this.#options.fallback(req, res);
      return;
    }
    this.#options.keys.identify(key).then(
      (identity) => {
        if (identity === undefined) this.#options.fallback(req, res);
        else new RunExchange(this.#options, req, res, name, startedAt, identity);
      },
      () => this.#options.fallback(req, res),
    );
  }
}

/** One request taken by RunRoute: reads the body, runs the task, writes the answer. */
class RunExchange {
  readonly #options: RunRouteOptions;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #agent: string;
  readonly #startedAt: number;
  readonly #identity: Identity;
  #chunks: Buffer[] = [];
  #received = 0;

  constructor(
    options: RunRouteOptions,
    req: IncomingMessage,
    res: ServerResponse,
    agent: string,
    startedAt: number,
    identity: Identity,
  ) {
    this.#options = options;
    this.#req = req;
    this.#res = res;
    this.#agent = agent;
    this.#startedAt = startedAt;
    this.#identity = identity;
    (req as ExchangeCarrier)[EXCHANGE] = this;
    req.on('data', onBodyData);
    req.on('end', onBodyEnd);
    req.on('error', onBodyError);
  }

  data(chunk: Buffer): void {
    this.#received += chunk.length;
    // The content length was checked; a body that outgrows it is the same 413 Fastify sends.
    if (this.#received > this.#options.bodyLimit) {
      this.#detach();
      this.#fail(bodyTooLarge());
      return;
    }
    this.#chunks.push(chunk);
  }

  end(): void {
    this.#detach();
    const chunks = this.#chunks;
    const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
    this.#chunks = [];
    this.#options.parseJson(this.#req as never, text, (err, body) => {
      if (err !== null) this.#fail(toHttpError(err));
      else this.#run(body);
    });
  }

  error(err: Error): void {
    this.#detach();
    // As Fastify's body reader: a broken body is the client's fault (usually it went away).
    this.#fail(new InvalidRequestError(err.message));
  }

  #detach(): void {
    const req = this.#req;
    req.removeListener('data', onBodyData);
    req.removeListener('end', onBodyEnd);
    req.removeListener('error', onBodyError);
  }

  #run(body: unknown): void {
    const validate = this.#options.validateBody;
    if (!validate(body)) {
      this.#fail(validationFailure('body', validate.errors ?? []));
      return;
    }
    this.#submit(body).catch((err: Error) => this.#fail(toHttpError(err)));
  }

  async #submit(body: RunAgentRequest): Promise<void> {
    const { runtime } = this.#options;
    const identity = withUser(this.#identity, body.user_id);
    const { task } = await runtime.submit(
      submitRequest(this.#agent, body, identity, headerValue(this.#req.headers.traceparent)),
    );
    const res = this.#res;
    if (body.stream === true) {
      await streamTaskEvents(runtime, this.#req, res, task.id, identity.tenantId, undefined);
      return;
    }
    // A synchronous caller that hangs up will never read the answer: stop the work (see the
    // Fastify route: the response's `close` before the answer was written is a hang-up).
    res.once('close', () => {
      if (!task.finished && !res.writableEnded) void runtime.cancel(task.id, identity.tenantId);
    });
    await task.wait();
    const reply = finishedRunReply(task.record);
    const overhead = performance.now() - this.#startedAt - task.providerMs - task.toolMs;
    this.#write(reply.status, JSON.stringify(reply.body), reply.retryAfter, overhead.toFixed(3));
  }

  #fail(error: AgentdError): void {
    if (error.status >= 500 && error.code === InternalError.code) {
      this.#options.log.error(
        { err: error.cause ?? error, url: this.#req.url, method: this.#req.method },
        'request failed',
      );
    }
    const retryAfter = retryAfterSeconds(error.retryAfterMs);
    this.#write(error.status, JSON.stringify({ error: error.toBody() }), retryAfter, undefined);
  }

  #write(
    status: number,
    payload: string,
    retryAfter: string | undefined,
    overhead: string | undefined,
  ): void {
    const res = this.#res;
    if (res.headersSent || res.destroyed) return;
    const headers: Record<string, string | number> = {
      'content-type': JSON_TYPE,
      'content-length': Buffer.byteLength(payload),
    };
    if (overhead !== undefined) headers['x-agentd-overhead-ms'] = overhead;
    if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
    res.writeHead(status, headers);
    res.end(payload);
  }
}

const EXCHANGE = Symbol('agentd.runExchange');

interface ExchangeCarrier extends IncomingMessage {
  [EXCHANGE]: RunExchange;
}

// Stream listeners are called with the stream as `this`: one shared function each, no closures.
function onBodyData(this: ExchangeCarrier, chunk: Buffer): void {
  this[EXCHANGE].data(chunk);
}

function onBodyEnd(this: ExchangeCarrier): void {
  this[EXCHANGE].end();
}

function onBodyError(this: ExchangeCarrier, err: Error): void {
  this[EXCHANGE].error(err);
}
