import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { TIERS } from '../../config/index.js';
import { CancelledError, type ErrorBody, InternalError, NotFoundError } from '../../errors.js';
import {
  AGENT_MODEL_PREFIX,
  type ChatCompletionBody,
  type EmbeddingsBody,
  forwardEmbeddings,
  openAIError,
  openAIErrorBody,
} from '../../gateway/index.js';
import type { Runtime } from '../../runtime/index.js';
import type { App } from '../app.js';
import { CHAT_COMPLETIONS_PATH, type ChatCompletions, renameUnknownModel } from '../chat-completions.js';
import { retryAfterSeconds, toHttpError } from '../errors.js';
import { identityOf } from '../identity.js';
import { ChatCompletionRequest } from '../schemas.js';

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

/**
 * OpenAI's API, so an OpenAI client needs only a base URL: chat completions in gateway mode (a
 * model or tier) or agent mode (`agent:<name>`), models, and embeddings. Errors use OpenAI's shape.
 */
export function openAIRoutes(app: App, runtime: Runtime, completions: ChatCompletions): void {
  app.register(async (instance) => {
    const scope = instance.withTypeProvider<TypeBoxTypeProvider>();
    const created = Math.floor(Date.now() / 1000);

    scope.setErrorHandler((err, request, reply) => {
      const error = toHttpError(err as Error);
      if (error.status >= 500 && error.code === InternalError.code)
        runtime.log.error({ err, url: request.url }, 'request failed');
      if (error.retryAfterMs !== undefined)
        reply.header('retry-after', retryAfterSeconds(error.retryAfterMs));
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
      CHAT_COMPLETIONS_PATH,
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
        await completions.complete(identityOf(request), body, request.headers, reply.raw, reply);
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
