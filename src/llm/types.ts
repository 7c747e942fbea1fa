import type { Cancellation } from '../lib/cancellation.js';

/**
 * Messages are kept in OpenAI's chat wire shape end to end, so nothing converts them between
 * the session store, the agent loop and an OpenAI-compatible provider.
 */

export type Role = 'system' | 'user' | 'assistant' | 'tool';

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: Role;
  content: string | null;
  name?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
}

/** A JSON Schema object describing a tool's arguments. */
export type JsonSchema = Record<string, unknown>;

export interface ToolSpec {
  type: 'function';
  function: { name: string; description: string; parameters: JsonSchema };
}

export interface Usage {
  input_tokens: number;
  output_tokens: number;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'function_call' | string;

/** One chat completion request as the runtime issues it (provider-agnostic). */
export interface ChatRequest {
  /** The provider's own model name. */
  model: string;
  messages: ChatMessage[];
  tools?: ToolSpec[];
  temperature?: number;
  maxTokens?: number;
  /** Extra provider parameters passed through verbatim (top_p, seed, …). */
  extra?: Record<string, unknown>;
}

/** Per-attempt limits; every value is in milliseconds. */
export interface CallTimeouts {
  /** From sending the request to receiving the response headers. */
  headersMs: number;
  /** From sending the request to the first content or tool-call delta. */
  firstTokenMs: number;
  /** Longest silence between two stream chunks once the body has started. */
  idleMs: number;
}

/**
 * Flow control of one provider stream: a sink whose reader is slow pauses the stream, and the
 * provider stops reading its socket (TCP back-pressure reaches the provider) until `resume`.
 * While paused, silence is the reader's, not the provider's: the idle deadline does not run.
 */
export interface StreamFlow {
  pause(): void;
  resume(): void;
}

/** Receives streamed output as it arrives. All methods are optional and must not throw. */
export interface StreamSink {
  /** A streamed reply started (status 2xx); `flow` pauses and resumes reading it. */
  onStreamStart?(flow: StreamFlow): void;
  /** A piece of assistant text. */
  onText?(text: string): void;
  /** A tool call whose name is known (arguments may still be streaming). */
  onToolCallStart?(index: number, id: string, name: string): void;
  /**
   * A provider stream chunk's raw `data` (after `onText`/`onToolCallStart` for it), for
   * pass-through; `usageOnly` marks the usage chunk that carries no choices. `[DONE]` is not given.
   */
  onChunk?(data: string, usageOnly: boolean): void;
  /**
   * A non-streamed reply's raw JSON body, before it is parsed (for pass-through), and `text`, the
   * same body decoded as UTF-8 (what is parsed).
   */
  onBody?(body: Buffer, text: string): void;
}

export interface CallOptions {
  /** Stops the call (task cancelled or timed out); the call rejects with its reason. */
  cancellation?: Cancellation | undefined;
  timeouts: CallTimeouts;
  sink?: StreamSink;
  /** Use a non-streaming request (the whole reply in one JSON body). */
  stream?: boolean;
  /** W3C trace context to forward upstream, when tracing is on. */
  traceparent?: string;
}

export interface ChatResult {
  content: string | null;
  toolCalls: ToolCall[];
  finishReason: FinishReason;
  usage: Usage;
  /** True when the provider reported no usage and it was estimated. */
  usageEstimated: boolean;
  /** The model name the provider reported, if any. */
  providerModel: string | undefined;
  /** Milliseconds from sending the request to the first delta (streaming only). */
  ttftMs: number | undefined;
  /** Malformed stream chunks that were skipped. */
  skippedChunks: number;
}

/** A provider's answer to a forwarded request, unparsed. */
export interface ForwardedResponse {
  status: number;
  retryAfterMs: number | undefined;
  body: Buffer;
}

/** A chat provider: one upstream endpoint that speaks some LLM API. */
export interface Provider {
  readonly name: string;
  chat(request: ChatRequest, options: CallOptions): Promise<ChatResult>;
  /** Posts a JSON body to another endpoint of the same API (`/embeddings`), when supported. */
  forward?(path: string, body: string, signal?: AbortSignal): Promise<ForwardedResponse>;
  close(): Promise<void>;
}
