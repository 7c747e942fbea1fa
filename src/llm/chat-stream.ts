import { createParser, type EventSourceParser } from 'eventsource-parser';
import { ProviderProtocolError } from '../errors.js';
import { estimateTokens } from '../lib/tokens.js';
import { plainContentDelta } from './content-delta.js';
import type { ChatMessage, ChatResult, FinishReason, StreamSink, ToolCall, Usage } from './types.js';

/** More malformed chunks than this in one reply is a broken provider, not noise. */
const MAX_SKIPPED_CHUNKS = 16;

interface ToolCallParts {
  id: string;
  name: string;
  args: string[];
}

interface ChunkChoice {
  delta?: {
    content?: string | null;
    tool_calls?: { index?: number; id?: string; function?: { name?: string; arguments?: string } }[];
  };
  finish_reason?: FinishReason | null;
}

interface ChunkPayload {
  model?: string;
  choices?: ChunkChoice[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string; code?: string; type?: string };
}

/**
 * Assembles one streamed OpenAI chat completion from SSE bytes. Text pieces are collected in an
 * array and joined once at the end; each chunk is parsed exactly once.
 */
export class ChatStreamAssembler {
  /** For what the fast path in `feed` does not read; made on first need. */
  #parser: EventSourceParser | undefined;
  readonly #sink: StreamSink | undefined;
  readonly #startedAt: number;
  #parts: string[] = [];
  #toolCalls: ToolCallParts[] = [];
  #finishReason: FinishReason | undefined;
  #usage: Usage | undefined;
  #model: string | undefined;
  #ttftMs: number | undefined;
  #skipped = 0;
  /**
   * True when the parser holds no partial line or event, so the next text starts a new event and
   * plain `data: …` events can be read without it (see `feed`).
   */
  #atEventBoundary = true;
  /** True once `[DONE]` arrived. */
  done = false;
  /** Set when the stream carried an error payload or too many malformed chunks. */
  failure: Error | undefined;

  constructor(sink: StreamSink | undefined, startedAt: number) {
    this.#sink = sink;
    this.#startedAt = startedAt;
  }

  /**
   * Parses the next piece of the stream. Almost every piece a provider sends is whole events of
   * one `data: …` line each (`data: {json}\n\n`, one per HTTP/2 frame); those are read here with
   * one slice per event. Anything else (comments, `event:`/`id:` fields, multi-line data, CR line
   * ends, a piece that ends mid-line, a byte-order mark) goes to
   * eventsource-parser from the first byte that is not such an event, so the spec's rules apply.
   */
  feed(text: string): void {
    let rest = text;
    if (this.#atEventBoundary && text.indexOf('\r') === -1) {
      let pos = 0;
      while (text.startsWith('data: ', pos)) {
        const end = text.indexOf('\n', pos + 6);
        if (end === -1 || text.charCodeAt(end + 1) !== 0x0a /* \n */) break;
        this.#onData(text.slice(pos + 6, end));
        pos = end + 2;
      }
      if (pos === text.length) return;
      if (pos > 0) rest = text.slice(pos);
    }
    this.#parser ??= createParser({ onEvent: (event) => this.#onData(event.data) });
    this.#parser.feed(rest);
    // A piece that ends with a blank line leaves the parser between events.
    this.#atEventBoundary = rest.endsWith('\n\n');
  }

  /** A finish reason arrived: the reply is complete even if `[DONE]` never comes. */
  get finished(): boolean {
    return this.#finishReason !== undefined;
  }

  /** Finished and usage known: nothing more is needed from the stream. */
  get complete(): boolean {
    return this.done || (this.#finishReason !== undefined && this.#usage !== undefined);
  }

  /** True once any delta (text or tool call) has been received. */
  get started(): boolean {
    return this.#ttftMs !== undefined;
  }

  result(messages: readonly ChatMessage[]): ChatResult {
    const content =
      this.#parts.length === 0 ? null : this.#parts.length === 1 ? this.#parts[0]! : this.#parts.join('');
    const toolCalls: ToolCall[] = [];
    for (const call of this.#toolCalls) {
      if (call === undefined) continue;
      toolCalls.push({
        id: call.id,
        type: 'function',
        function: { name: call.name, arguments: call.args.join('') },
      });
    }
    const usage = this.#usage ?? estimateUsage(messages, content, toolCalls);
    return {
      content,
      toolCalls,
      finishReason: this.#finishReason ?? 'stop',
      usage,
      usageEstimated: this.#usage === undefined,
      providerModel: this.#model === '' ? undefined : this.#model,
      ttftMs: this.#ttftMs,
      skippedChunks: this.#skipped,
    };
  }

  #onData(data: string): void {
    if (data === '[DONE]') {
      this.done = true;
      return;
    }
    // The model name comes from the first chunk, which is always parsed in full.
    if (this.#model !== undefined) {
      const text = plainContentDelta(data);
      if (text !== undefined) {
        if (text.length > 0) this.#onText(text);
        this.#sink?.onChunk?.(data, false);
        return;
      }
    }
    let payload: ChunkPayload;
    try {
      payload = JSON.parse(data) as ChunkPayload;
    } catch {
      this.#skip();
      return;
    }
    if (payload === null || typeof payload !== 'object') {
      this.#skip();
      return;
    }
    if (payload.error !== undefined) {
      const reason = payload.error.message ?? 'unknown error';
      this.failure = new ProviderProtocolError(`the provider reported an error mid-stream: ${reason}`, {
        details: { upstream_code: payload.error.code, upstream_type: payload.error.type },
      });
      return;
    }
    if (this.#model === undefined) this.#model = payload.model ?? '';
    const usage = payload.usage;
    if (usage !== undefined && usage !== null) {
      this.#usage = { input_tokens: usage.prompt_tokens ?? 0, output_tokens: usage.completion_tokens ?? 0 };
    }
    const choice = payload.choices?.[0];
    if (choice === undefined) {
      this.#sink?.onChunk?.(data, usage !== undefined && usage !== null);
      return;
    }
    const delta = choice.delta;
    if (delta !== undefined) {
      const text = delta.content;
      if (typeof text === 'string' && text.length > 0) this.#onText(text);
      if (delta.tool_calls !== undefined) this.#onToolCallDeltas(delta.tool_calls);
    }
    if (choice.finish_reason !== undefined && choice.finish_reason !== null)
      this.#finishReason = choice.finish_reason;
    this.#sink?.onChunk?.(data, false);
  }

  #onText(text: string): void {
    this.#markFirstDelta();
    this.#parts.push(text);
    this.#sink?.onText?.(text);
  }

  #onToolCallDeltas(deltas: NonNullable<NonNullable<ChunkChoice['delta']>['tool_calls']>): void {
    this.#markFirstDelta();
    for (const delta of deltas) {
      const index = delta.index ?? 0;
      let call = this.#toolCalls[index];
      if (call === undefined) {
        call = { id: delta.id ?? `call_${index}`, name: delta.function?.name ?? '', args: [] };
        this.#toolCalls[index] = call;
        if (call.name !== '') this.#sink?.onToolCallStart?.(index, call.id, call.name);
      } else {
        if (delta.id !== undefined && delta.id !== '') call.id = delta.id;
        if (delta.function?.name) {
          const wasUnnamed = call.name === '';
          call.name += delta.function.name;
          if (wasUnnamed) this.#sink?.onToolCallStart?.(index, call.id, call.name);
        }
      }
      const args = delta.function?.arguments;
      if (args !== undefined && args !== '') call.args.push(args);
    }
  }

  #markFirstDelta(): void {
    if (this.#ttftMs !== undefined) return;
    this.#ttftMs = performance.now() - this.#startedAt;
  }

  #skip(): void {
    this.#skipped++;
    if (this.#skipped > MAX_SKIPPED_CHUNKS && this.failure === undefined) {
      this.failure = new ProviderProtocolError(`more than ${MAX_SKIPPED_CHUNKS} malformed stream chunks`);
    }
  }
}

/** Builds a ChatResult from a non-streaming completion body. */
export function resultFromCompletion(body: unknown, messages: readonly ChatMessage[]): ChatResult {
  const payload = body as {
    model?: string;
    choices?: { message?: { content?: string | null; tool_calls?: ToolCall[] }; finish_reason?: string }[];
    usage?: { prompt_tokens?: number; completion_tokens?: number };
  };
  const choice = payload?.choices?.[0];
  if (choice === undefined || choice.message === undefined) {
    throw new ProviderProtocolError('the provider returned a completion without choices');
  }
  const content = choice.message.content ?? null;
  const toolCalls = (choice.message.tool_calls ?? []).map((call) => ({
    id: call.id,
    type: 'function' as const,
    function: { name: call.function.name, arguments: call.function.arguments ?? '' },
  }));
  const usage =
    payload.usage === undefined
      ? estimateUsage(messages, content, toolCalls)
      : {
          input_tokens: payload.usage.prompt_tokens ?? 0,
          output_tokens: payload.usage.completion_tokens ?? 0,
        };
  return {
    content,
    toolCalls,
    finishReason: choice.finish_reason ?? 'stop',
    usage,
    usageEstimated: payload.usage === undefined,
    providerModel: payload.model,
    ttftMs: undefined,
    skippedChunks: 0,
  };
}

function estimateUsage(
  messages: readonly ChatMessage[],
  content: string | null,
  toolCalls: ToolCall[],
): Usage {
  let input = 0;
  for (const message of messages) input += estimateTokens(message.content) + 4;
  let output = estimateTokens(content);
  for (const call of toolCalls)
    output += estimateTokens(call.function.arguments) + estimateTokens(call.function.name);
  return { input_tokens: input, output_tokens: output };
}
