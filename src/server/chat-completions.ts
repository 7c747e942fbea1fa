import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { ValidateFunction } from 'ajv';
import type { FastifyReply } from 'fastify';
import type { Identity } from '../admission/index.js';
import { type AgentdError, NotFoundError } from '../errors.js';
import {
  AGENT_MODEL_PREFIX,
  AgentChat,
  type ChatCompletionBody,
  ChatGateway,
  type OpenAIErrorBody,
  openAIError,
} from '../gateway/index.js';
import { Cancellation } from '../lib/cancellation.js';
import type { Runtime } from '../runtime/index.js';
import { HttpCompletionOutput } from './completion-output.js';
import type { DirectExchange, DirectRoute } from './direct-routes.js';
import { headerValue, withUser } from './identity.js';

/** The session header of agent mode. */
const SESSION_HEADER = 'x-agentd-session-id';

/** The path of OpenAI's chat completions. */
export const CHAT_COMPLETIONS_PATH = '/v1/chat/completions';

/**
 * `POST /v1/chat/completions` once its body is valid, for both ways the route is served: gateway
 * mode (a model or tier) or agent mode (`agent:<name>`), answered on the raw response.
 */
export class ChatCompletions {
  readonly #gateway: ChatGateway;
  readonly #agents: AgentChat;

  constructor(runtime: Runtime) {
    this.#gateway = new ChatGateway(runtime);
    this.#agents = new AgentChat(runtime);
  }

  /**
   * Answers one completion on `res`; throws what fails before the answer started (an unknown
   * model or agent as OpenAI's 404). `reply` is Fastify's, hijacked when the answer starts.
   */
  async complete(
    identity: Identity,
    body: ChatCompletionBody,
    headers: IncomingHttpHeaders,
    res: ServerResponse,
    reply: FastifyReply | undefined,
  ): Promise<void> {
    const caller = withUser(identity, body.user);
    const traceparent = headerValue(headers.traceparent);
    if (body.model.startsWith(AGENT_MODEL_PREFIX)) {
      const output = new HttpCompletionOutput(res, reply, undefined);
      await this.#agents
        .complete({
          identity: caller,
          body,
          sessionId: headerValue(headers[SESSION_HEADER]),
          output,
          traceparent,
          onHangUp: (listener) => output.onHangUp(listener),
        })
        .catch(renameAgentField);
      return;
    }
    const cancellation = new Cancellation();
    const output = new HttpCompletionOutput(res, reply, cancellation);
    try {
      await this.#gateway.complete({ identity: caller, body, output, cancellation, traceparent });
    } catch (err) {
      renameUnknownModel(err);
    }
  }
}

/** `POST /v1/chat/completions` served by DirectRoutes, with OpenAI's error envelope. */
export class ChatRoute implements DirectRoute<ChatCompletionBody> {
  readonly #completions: ChatCompletions;
  readonly validateBody: ValidateFunction<ChatCompletionBody>;

  constructor(completions: ChatCompletions, validateBody: ValidateFunction<ChatCompletionBody>) {
    this.#completions = completions;
    this.validateBody = validateBody;
  }

  match(url: string): string | undefined {
    return url === CHAT_COMPLETIONS_PATH ? '' : undefined;
  }

  errorBody(error: AgentdError): OpenAIErrorBody {
    return openAIError(error);
  }

  serve(exchange: DirectExchange, body: ChatCompletionBody): Promise<void> {
    return this.#completions.complete(exchange.identity, body, exchange.req.headers, exchange.res, undefined);
  }
}

/** An unknown model is OpenAI's 404 `model_not_found`, not a generic 400. */
export function renameUnknownModel(err: unknown): never {
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
