import {
  type AgentdError,
  BudgetExhaustedError,
  ContextLengthExceededError,
  type ErrorBody,
  NotFoundError,
  RateLimitedError,
  statusOf,
  UnauthorizedError,
} from '../errors.js';
import type { ToolCall, Usage } from '../llm/index.js';

/** OpenAI's error envelope: `{ error: { message, type, param, code } }` plus agentd's own code. */
export interface OpenAIErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
    agentd_code: string;
    retry_after_ms?: number;
  };
}

/** OpenAI's error `type` for an HTTP status (clients branch on the status, some on the type). */
function errorType(status: number, code: string): string {
  if (code === BudgetExhaustedError.code) return 'insufficient_quota';
  switch (status) {
    case 400:
    case 413:
    case 415:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 409:
      return 'conflict_error';
    case 422:
      return 'unprocessable_entity_error';
    case 429:
      return 'rate_limit_error';
    default:
      return status >= 500 ? 'server_error' : 'invalid_request_error';
  }
}

/** The codes OpenAI clients are known to test for, where agentd has the same failure. */
function openAICode(code: string, param: string | null): string | null {
  switch (code) {
    case ContextLengthExceededError.code:
      return 'context_length_exceeded';
    case RateLimitedError.code:
      return 'rate_limit_exceeded';
    case BudgetExhaustedError.code:
      return 'insufficient_quota';
    case UnauthorizedError.code:
      return 'invalid_api_key';
    case NotFoundError.code:
      return param === 'model' ? 'model_not_found' : code;
    default:
      return code;
  }
}

/** Renders an agentd error body (thrown or stored on a task) in OpenAI's error shape. */
export function openAIErrorBody(body: ErrorBody): OpenAIErrorBody {
  const field = body.details?.field;
  const param = typeof field === 'string' ? field.replace(/^body\./, '') : null;
  const error: OpenAIErrorBody['error'] = {
    message: body.message,
    type: errorType(statusOf(body.code), body.code),
    param,
    code: openAICode(body.code, param),
    agentd_code: body.code,
  };
  if (body.retry_after_ms !== undefined) error.retry_after_ms = body.retry_after_ms;
  return { error };
}

/** The same for an error instance. */
export function openAIError(error: AgentdError): OpenAIErrorBody {
  return openAIErrorBody(error.toBody());
}

/** OpenAI's usage object. */
export function usageJson(usage: Usage): {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
} {
  return {
    prompt_tokens: usage.input_tokens,
    completion_tokens: usage.output_tokens,
    total_tokens: usage.input_tokens + usage.output_tokens,
  };
}

/** A whole `chat.completion` object for a reply agentd assembled itself (cache hit, agent mode). */
export function completionJson(
  id: string,
  created: number,
  model: string,
  content: string | null,
  toolCalls: readonly ToolCall[],
  finishReason: string,
  usage: Usage,
): Record<string, unknown> {
  const message: Record<string, unknown> = { role: 'assistant', content, refusal: null };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }],
    usage: usageJson(usage),
  };
}

/**
 * Serialises `chat.completion.chunk` frames for replies agentd produces itself. The id, created
 * time and model are fixed per reply, so their JSON prefix is built once.
 */
export class ChunkWriter {
  readonly #prefix: string;

  constructor(id: string, created: number, model: string) {
    this.#prefix = `data: {"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"system_fingerprint":null,"choices":`;
  }

  /** The opening chunk: the assistant role with empty content. */
  role(): string {
    return `${this.#prefix}[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}\n\n`;
  }

  text(text: string): string {
    return `${this.#prefix}[{"index":0,"delta":{"content":${JSON.stringify(text)}},"logprobs":null,"finish_reason":null}]}\n\n`;
  }

  /** Complete tool calls, one delta each (index, id, name and all arguments at once). */
  toolCalls(calls: readonly ToolCall[]): string {
    const deltas = calls.map((call, index) => ({
      index,
      id: call.id,
      type: 'function',
      function: { name: call.function.name, arguments: call.function.arguments },
    }));
    return `${this.#prefix}[{"index":0,"delta":{"tool_calls":${JSON.stringify(deltas)}},"logprobs":null,"finish_reason":null}]}\n\n`;
  }

  finish(reason: string): string {
    return `${this.#prefix}[{"index":0,"delta":{},"logprobs":null,"finish_reason":${JSON.stringify(reason)}}]}\n\n`;
  }

  /** The usage chunk of `stream_options.include_usage`: no choices, only usage. */
  usage(usage: Usage): string {
    return `${this.#prefix}[],"usage":${JSON.stringify(usageJson(usage))}}\n\n`;
  }
}

export const DONE_FRAME = 'data: [DONE]\n\n';

/** An error inside a stream that has already started (the `openai` SDKs raise it as an APIError). */
export function errorFrame(body: ErrorBody): string {
  return `data: ${JSON.stringify(openAIErrorBody(body))}\n\n`;
}

/** `chatcmpl-` ids, as OpenAI's, from a random part. */
export function completionId(): string {
  return `chatcmpl-${crypto.randomUUID().replaceAll('-', '')}`;
}
