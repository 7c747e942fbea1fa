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

    scope.post(
      '/v1/chat/completions',
      {
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
        const output = new HttpCompletionOutput(reply);
        const traceparent = headerValue(request.headers.traceparent);
        if (body.model.startsWith(AGENT_MODEL_PREFIX)) {
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
        output.onHangUp(() => cancellation.abortWith(new CancelledError('the client closed the connection')));
        await gateway
          .complete({ identity, body, output, cancellation, traceparent })
          .catch(renameUnknownModel);
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

/** A completion written to Fastify's raw response: SSE for streams, JSON otherwise. */
class HttpCompletionOutput implements CompletionOutput {
  readonly #reply: FastifyReply;
  readonly #res: ServerResponse;
  #headers: Record<string, string> | undefined;
  #corked = false;
  started = false;
  closed = false;

  constructor(reply: FastifyReply) {
    this.#reply = reply;
    this.#res = reply.raw;
  }

  /** Runs `listener` if the client goes away before the answer was written. */
  onHangUp(listener: () => void): void {
    this.#res.once('close', () => {
      if (this.#res.writableEnded) return;
      this.closed = true;
      listener();
    });
  }

  header(name: string, value: string): void {
    if (this.started) return;
    this.#headers ??= {};
    this.#headers[name] = value;
  }

  write(text: string): void {
    if (this.closed) return;
    if (!this.started) {
      this.started = true;
      this.#reply.hijack();
      this.#res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        ...this.#headers,
      });
    }
    // Chunks parsed from one provider read are written in one go: cork until the tick ends.
    if (!this.#corked) {
      this.#corked = true;
      this.#res.cork();
      process.nextTick(uncork, this);
    }
    this.#res.write(text);
  }

  /** Flushes the writes of this tick. */
  flush(): void {
    this.#corked = false;
    this.#res.uncork();
  }

  end(): void {
    if (!this.#res.writableEnded) this.#res.end();
  }

  json(body: string | Buffer): void {
    if (this.closed || this.started) return;
    this.started = true;
    this.#reply.hijack();
    this.#res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...this.#headers,
    });
    this.#res.end(body);
  }
}

function uncork(output: HttpCompletionOutput): void {
  output.flush();
}
