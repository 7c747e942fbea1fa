import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { ValidateFunction } from 'ajv';
import type { FastifyBodyParser } from 'fastify';
import { type ApiKeys, type Identity, OPEN_IDENTITY } from '../admission/index.js';
import { type AgentdError, InternalError, InvalidRequestError } from '../errors.js';
import type { Logger } from '../observability/index.js';
import { presentedKey } from './auth.js';
import { bodyTooLarge, retryAfterSeconds, toHttpError, validationFailure } from './errors.js';

const JSON_TYPE = 'application/json; charset=utf-8';

/** True for `application/json`, optionally with `charset=utf-8`: the only bodies taken here. */
function plainJson(type: string | undefined): boolean {
  return type === 'application/json' || type === JSON_TYPE || type === 'application/json;charset=utf-8';
}

/**
 * A `POST` route served on `node:http` before Fastify. It must answer every request it takes as
 * its Fastify twin does: same validator, same error envelope (`errorBody`), same headers.
 */
export interface DirectRoute<Body = unknown> {
  /** The path parameter of a URL this route takes (`''` when it has none), else undefined. */
  match(url: string): string | undefined;
  /** The body validator (the same compiled schema Fastify uses for the route). */
  readonly validateBody: ValidateFunction<Body>;
  /** Answers a valid body; what it throws (before answering) becomes the error reply. */
  serve(exchange: DirectExchange, body: Body): Promise<void>;
  /** The route's error envelope, as its Fastify error handler renders it. */
  errorBody(error: AgentdError): unknown;
}

export interface DirectRoutesOptions {
  keys: ApiKeys;
  log: Logger;
  bodyLimit: number;
  /** Fastify's own JSON body parser (same errors, same prototype-poisoning checks). */
  parseJson: FastifyBodyParser<string>;
  /** Fastify's request handler: everything not taken here goes there, untouched. */
  fallback: (req: IncomingMessage, res: ServerResponse) => void;
  routes: readonly DirectRoute[];
}

/**
 * The hot routes on `node:http` directly, without Fastify's request pipeline (routing, hooks,
 * body parser, reply, serialiser: discuss/0008, discuss/0303). A request is taken only when it can
 * be answered exactly as the Fastify route would — same authentication, body limit, JSON parser,
 * validator, error bodies and headers; anything else (another method, content type or path,
 * chunked bodies, escapes or a query, a missing or unknown API key, a key lookup error, a closing
 * server) is handed to Fastify before the body is read, and gets Fastify's answer.
 */
export class DirectRoutes {
  readonly #options: DirectRoutesOptions;
  #closing = false;

  constructor(options: DirectRoutesOptions) {
    this.#options = options;
  }

  /** From now on every request goes to Fastify (which answers 503 while closing). */
  close(): void {
    this.#closing = true;
  }

  /** The server's request listener. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const options = this.#options;
    if (this.#closing || req.method !== 'POST') {
      options.fallback(req, res);
      return;
    }
    const url = req.url ?? '';
    const routes = options.routes;
    let route: DirectRoute | undefined;
    let param: string | undefined;
    for (let i = 0; i < routes.length && param === undefined; i++) {
      route = routes[i]!;
      param = route.match(url);
    }
    const headers = req.headers;
    if (
      param === undefined ||
      !plainJson(headers['content-type']) ||
      headers['content-length'] === undefined ||
      headers['transfer-encoding'] !== undefined ||
      Number(headers['content-length']) > options.bodyLimit
    ) {
      options.fallback(req, res);
      return;
    }
    const startedAt = performance.now();
    const taken = route!;
    const enabled = options.keys.enabled();
    if (enabled === false) new DirectExchange(options, taken, req, res, param, startedAt, OPEN_IDENTITY);
    else if (enabled === true) this.#authenticate(taken, req, res, param, startedAt, headers);
    else
      enabled.then(
        (on) => {
          if (on) this.#authenticate(taken, req, res, param, startedAt, headers);
          else new DirectExchange(options, taken, req, res, param, startedAt, OPEN_IDENTITY);
        },
        () => options.fallback(req, res),
      );
  };

  /** A request with a known key is served here; without one (or on a lookup error) Fastify answers. */
  #authenticate(
    route: DirectRoute,
    req: IncomingMessage,
    res: ServerResponse,
    param: string,
    startedAt: number,
    headers: IncomingHttpHeaders,
  ): void {
    const options = this.#options;
    const key = presentedKey(headers);
    if (key === undefined) {
      options.fallback(req, res);
      return;
    }
    options.keys.identify(key).then(
      (identity) => {
        if (identity === undefined) options.fallback(req, res);
        else new DirectExchange(options, route, req, res, param, startedAt, identity);
      },
      () => options.fallback(req, res),
    );
  }
}

/** One request taken by DirectRoutes: reads and checks the body, then hands it to its route. */
export class DirectExchange {
  readonly #options: DirectRoutesOptions;
  readonly #route: DirectRoute;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The route's path parameter (`''` when it has none). */
  readonly param: string;
  /** `performance.now()` when the request was taken. */
  readonly startedAt: number;
  /** The caller's API key identity, or the default tenant while the server runs open. */
  readonly identity: Identity;
  #chunks: Buffer[] = [];
  #received = 0;
  /** The body was read whole: the listeners stay attached (removing them costs more than they do). */
  #bodyRead = false;

  constructor(
    options: DirectRoutesOptions,
    route: DirectRoute,
    req: IncomingMessage,
    res: ServerResponse,
    param: string,
    startedAt: number,
    identity: Identity,
  ) {
    this.#options = options;
    this.#route = route;
    this.req = req;
    this.res = res;
    this.param = param;
    this.startedAt = startedAt;
    this.identity = identity;
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
      this.#failBody(bodyTooLarge());
      return;
    }
    this.#chunks.push(chunk);
  }

  end(): void {
    // After `end` a request emits no more data; an `error` (a hang-up while the answer is being
    // made) is ignored below, as it was when no listener was left to hear it.
    this.#bodyRead = true;
    const chunks = this.#chunks;
    const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
    this.#chunks = [];
    this.#options.parseJson(this.req as never, text, (err, body) => {
      if (err !== null) this.#failBody(toHttpError(err));
      else this.#validate(body);
    });
  }

  error(err: Error): void {
    if (this.#bodyRead) return;
    this.#detach();
    // As Fastify's body reader: a broken body is the client's fault (usually it went away).
    this.#failBody(new InvalidRequestError(err.message));
  }

  /** Answers with the route's error envelope (unless an answer has started). */
  fail(error: AgentdError): void {
    this.#fail(error, false);
  }

  /** Writes a whole JSON answer as Fastify's reply would (status, type, length, optional headers). */
  reply(status: number, payload: string, retryAfter: string | undefined, overhead: string | undefined): void {
    this.#write(status, payload, retryAfter, overhead, false);
  }

  /**
   * A body that could not be read or parsed: as Fastify's body parser, the answer closes the
   * connection (the client may still be sending).
   */
  #failBody(error: AgentdError): void {
    this.#fail(error, true);
  }

  #fail(error: AgentdError, close: boolean): void {
    if (error.status >= 500 && error.code === InternalError.code) {
      this.#options.log.error(
        { err: error.cause ?? error, url: this.req.url, method: this.req.method },
        'request failed',
      );
    }
    const payload = JSON.stringify(this.#route.errorBody(error));
    this.#write(error.status, payload, retryAfterSeconds(error.retryAfterMs), undefined, close);
  }

  #write(
    status: number,
    payload: string,
    retryAfter: string | undefined,
    overhead: string | undefined,
    close: boolean,
  ): void {
    const res = this.res;
    if (res.headersSent || res.destroyed) return;
    const headers: Record<string, string | number> = {
      'content-type': JSON_TYPE,
      'content-length': Buffer.byteLength(payload),
    };
    if (overhead !== undefined) headers['x-agentd-overhead-ms'] = overhead;
    if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
    if (close) headers.connection = 'close';
    res.writeHead(status, headers);
    res.end(payload);
  }

  #detach(): void {
    const req = this.req;
    req.removeListener('data', onBodyData);
    req.removeListener('end', onBodyEnd);
    req.removeListener('error', onBodyError);
  }

  #validate(body: unknown): void {
    const validate = this.#route.validateBody;
    if (!validate(body)) this.fail(validationFailure('body', validate.errors ?? []));
    else void this.#serve(body);
  }

  async #serve(body: unknown): Promise<void> {
    try {
      await this.#route.serve(this, body);
    } catch (err) {
      this.fail(toHttpError(err as Error));
    }
  }
}

const EXCHANGE = Symbol('agentd.directExchange');

interface ExchangeCarrier extends IncomingMessage {
  [EXCHANGE]: DirectExchange;
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
