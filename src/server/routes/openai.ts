import type { ServerResponse } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import Type from 'typebox';
import { TIERS } from '../../config/index.js';
import { CancelledError, type ErrorBody, InternalError, NotFoundError } from '../../errors.js';
import {
  AGENT_MODEL_PREFIX,
  AgentChat,
  type ChatCompletionBody,
  ChatGateway,
  type CompletionOutput,
  type DrainListener,
  type EmbeddingsBody,
  forwardEmbeddings,
  openAIError,
  openAIErrorBody,
} from '../../gateway/index.js';
import { Cancellation } from '../../lib/cancellation.js';
import type { Runtime } from '../../runtime/index.js';
import type { App } from '../app.js';
import { toHttpError } from '../errors.js';
import { headerValue, identityOf, withUser } from '../identity.js';

const Message = Type.Object(
  {
    role: Type.Union([
      Type.Literal('system'),
      Type.Literal('developer'),
      Type.Literal('user'),
      Type.Literal('assistant'),
      Type.Literal('tool'),
      Type.Literal('function'),
    ]),
  },
  { additionalProperties: true },
);

const ChatCompletionRequest = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 512 }),
    messages: Type.Array(Message, { minItems: 1 }),
    stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    stream_options: Type.Optional(
      Type.Union([
        Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, { additionalProperties: true }),
        Type.Null(),
      ]),
    ),
    tools: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }))),
    temperature: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 2 }), Type.Null()])),
    max_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
    user: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: true },
);

const EmbeddingsRequest = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 512 }),
    input: Type.Union([
      Type.String(),
      Type.Array(Type.String(), { minItems: 1 }),
      Type.Array(Type.Integer()),
      Type.Array(Type.Array(Type.Integer())),
    ]),
  },
  { additionalProperties: true },
);

const ModelParams = Type.Object({ model: Type.String() });

/** The session header of agent mode. */
const SESSION_HEADER = 'x-agentd-session-id';

/**
 * OpenAI's API, so an OpenAI client needs only a base URL: chat completions in gateway mode (a
 * model or tier) or agent mode (`agent:<name>`), models, and embeddings. Errors use OpenAI's shape.
 */
export function openAIRoutes(app: App, runtime: Runtime): void {
  app.register(async (instance) => {
    const scope = instance.withTypeProvider<TypeBoxTypeProvider>();
    const gateway = new ChatGateway(runtime);
    const agents = new AgentChat(runtime);
    const created = Math.floor(Date.now() / 1000);

    scope.setErrorHandler((err, request, reply) => {
      const error = toHttpError(err as Error);
      if (error.status >= 500 && error.code === InternalError.code)
        runtime.log.error({ err, url: request.url }, 'request failed');
      if (error.retryAfterMs !== undefined)
        reply.header('retry-after', String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))));
      reply.code(error.status).send(openAIError(error));
    });
    // Errors sent before a handler runs (authentication) arrive in agentd's envelope: reshape them.
    scope.addHook('preSerialization', async (_request, _reply, payload) => {
      const inner = (payload as { error?: ErrorBody & { type?: unknown } } | null)?.error;
      if (inner === undefined || inner.type !== undefined || typeof inner.code !== 'string') return payload;
      return openAIErrorBody(inner);
    });

    // Without request logs, nothing logs through a completion's request logger: spare the pino
    // child (bindings serialised per request) Fastify would build for it.
    const requestLogs = runtime.config.observability.request_log_sample_rate > 0;
    scope.post(
      '/v1/chat/completions',
      {
        ...(requestLogs ? {} : { childLoggerFactory: sameLogger }),
        schema: {
          summary:
            'OpenAI-compatible chat completions (gateway mode, or agent mode with model "agent:<name>")',
          tags: ['openai'],
          body: ChatCompletionRequest,
        },
      },
      async (request, reply) => {
        const body = request.body as unknown as ChatCompletionBody;
        const identity = withUser(identityOf(request), body.user);
        const traceparent = headerValue(request.headers.traceparent);
        if (body.model.startsWith(AGENT_MODEL_PREFIX)) {
          const output = new HttpCompletionOutput(reply, undefined);
          await agents
            .complete({
              identity,
              body,
              sessionId: headerValue(request.headers[SESSION_HEADER]),
              output,
              traceparent,
              onHangUp: (listener) => output.onHangUp(listener),
            })
            .catch(renameAgentField);
          return reply;
        }
        const cancellation = new Cancellation();
        const output = new HttpCompletionOutput(reply, cancellation);
        try {
          await gateway.complete({ identity, body, output, cancellation, traceparent });
        } catch (err) {
          renameUnknownModel(err);
        }
        return reply;
      },
    );

    scope.get(
      '/v1/models',
      {
        schema: {
          summary: 'Models, tiers and agents (as agent:<name>) a completion may name',
          tags: ['openai'],
        },
      },
      async () => ({ object: 'list' as const, data: listModels(runtime, created) }),
    );

    scope.get(
      '/v1/models/:model',
      { schema: { summary: 'One model', tags: ['openai'], params: ModelParams } },
      async (request) => {
        const model = listModels(runtime, created).find((entry) => entry.id === request.params.model);
        if (model === undefined) {
          throw new NotFoundError(`no model "${request.params.model}"`, { details: { field: 'model' } });
        }
        return model;
      },
    );

    scope.post(
      '/v1/embeddings',
      {
        schema: {
          summary: "OpenAI-compatible embeddings (forwarded to the model's provider)",
          tags: ['openai'],
          body: EmbeddingsRequest,
        },
      },
      async (request, reply) => {
        const controller = new AbortController();
        reply.raw.once('close', () => {
          if (!reply.raw.writableEnded)
            controller.abort(new CancelledError('the client closed the connection'));
        });
        const answer = await forwardEmbeddings(
          runtime,
          identityOf(request),
          request.body as EmbeddingsBody,
          controller.signal,
        ).catch(renameUnknownModel);
        return reply.type('application/json').send(answer);
      },
    );
  });
}

interface ModelEntry {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

/** Catalog models, tiers with models, and agents as `agent:<name>`. */
function listModels(runtime: Runtime, created: number): ModelEntry[] {
  const config = runtime.config;
  const entries: ModelEntry[] = [];
  for (const [id, model] of Object.entries(config.models))
    entries.push({ id, object: 'model', created, owned_by: model.provider });
  for (const tier of TIERS) {
    if ((config.tiers[tier]?.length ?? 0) > 0)
      entries.push({ id: tier, object: 'model', created, owned_by: 'agentd' });
  }
  for (const agent of runtime.agents())
    entries.push({ id: `${AGENT_MODEL_PREFIX}${agent.name}`, object: 'model', created, owned_by: 'agentd' });
  return entries;
}

/** A request logger that is the server's own. */
function sameLogger<L>(logger: L): L {
  return logger;
}

/** An unknown model is OpenAI's 404 `model_not_found`, not a generic 400. */
function renameUnknownModel(err: unknown): never {
  const error = err as { code?: string; message?: string; details?: Record<string, unknown> };
  if (
    error.code === 'AGENTD_INVALID_REQUEST' &&
    error.details?.field === 'model' &&
    error.message?.startsWith('unknown model')
  )
    throw new NotFoundError(error.message, { details: { field: 'model' } });
  throw err;
}

/** An unknown agent is an unknown model to an OpenAI client. */
function renameAgentField(err: unknown): never {
  const error = err as { code?: string; details?: Record<string, unknown> };
  if (error.details?.field === 'agent') error.details = { ...error.details, field: 'model' };
  throw err;
}

/** The headers of an event stream. */
const STREAM_HEADERS: Record<string, string> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/** Queued stream text past this many characters is sent at once instead of at the end of the turn. */
const FLUSH_AT = 16 * 1024;

/** The output of a response, for the module-level listeners below (no closure per request). */
const OUTPUT = Symbol('agentd.completionOutput');
type OutputResponse = ServerResponse & { [OUTPUT]?: HttpCompletionOutput };

/**
 * A completion written to Fastify's raw response: SSE for streams, JSON otherwise. Stream text
 * written during one turn of the event loop (every chunk of a provider read, and the ending when
 * the reply completes in it) leaves in one send; `write` reports when the client's socket buffer
 * is full, so the writer can stop reading its provider until `drain`.
 */
class HttpCompletionOutput implements CompletionOutput {
  readonly #reply: FastifyReply;
  readonly #res: OutputResponse;
  /** Aborted when the client goes away (gateway mode). */
  readonly #cancellation: Cancellation | undefined;
  #hangUp: (() => void) | undefined;
  #headers: Record<string, string> | undefined;
  #queued = '';
  #flushing = false;
  #drain: DrainListener | undefined;
  started = false;
  closed = false;

  constructor(reply: FastifyReply, cancellation: Cancellation | undefined) {
    this.#reply = reply;
    this.#cancellation = cancellation;
    const res = reply.raw as OutputResponse;
    this.#res = res;
    res[OUTPUT] = this;
    res.on('close', onResponseClose);
  }

  /** Runs `listener` if the client goes away before the answer was written (agent mode). */
  onHangUp(listener: () => void): void {
    this.#hangUp = listener;
  }

  /** The response closed: a hang-up unless the answer was complete. */
  hungUp(): void {
    if (this.#res.writableEnded) return;
    this.closed = true;
    this.#queued = '';
    this.#cancellation?.abortWith(new CancelledError('the client closed the connection'));
    this.#hangUp?.();
  }

  header(name: string, value: string): void {
    if (this.started) return;
    this.#headers ??= {};
    this.#headers[name] = value;
  }

  write(text: string): boolean {
    if (this.closed) return true;
    if (!this.started) this.#start();
    this.#queued += text;
    if (this.#queued.length >= FLUSH_AT) return this.flush();
    if (!this.#flushing) {
      this.#flushing = true;
      setImmediate(flushOutput, this);
    }
    return !this.#res.writableNeedDrain;
  }

  /** Sends what is queued; false when the client's socket buffer is full. */
  flush(): boolean {
    this.#flushing = false;
    const text = this.#queued;
    if (text === '' || this.closed || this.#res.writableEnded) return !this.#res.writableNeedDrain;
    this.#queued = '';
    this.#sendHeaders();
    return this.#res.write(text);
  }

  end(text?: string): void {
    const res = this.#res;
    if (this.closed || res.writableEnded) return;
    if (!this.started) this.#start();
    const last = text === undefined ? this.#queued : this.#queued + text;
    this.#queued = '';
    this.#sendHeaders();
    res.end(last);
  }

  json(body: string | Buffer): void {
    if (this.closed || this.started) return;
    this.started = true;
    this.#reply.hijack();
    const res = this.#res;
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...this.#headers,
    });
    res.end(body);
  }

  onDrainOnce(listener: DrainListener): void {
    this.#drain = listener;
    this.#res.once('drain', onResponseDrain);
  }

  /** The client's socket drained. */
  drained(): void {
    const listener = this.#drain;
    this.#drain = undefined;
    listener?.onDrain();
  }

  #start(): void {
    this.started = true;
    this.#reply.hijack();
  }

  #sendHeaders(): void {
    const res = this.#res;
    if (res.headersSent) return;
    res.writeHead(
      200,
      this.#headers === undefined ? STREAM_HEADERS : { ...STREAM_HEADERS, ...this.#headers },
    );
  }
}

function onResponseClose(this: OutputResponse): void {
  this[OUTPUT]?.hungUp();
}

function onResponseDrain(this: OutputResponse): void {
  this[OUTPUT]?.drained();
}

function flushOutput(output: HttpCompletionOutput): void {
  output.flush();
}
