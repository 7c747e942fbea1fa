import { InvalidRequestError } from '../errors.js';
import type { ChatMessage, ChatRequest, ToolSpec } from '../llm/index.js';

/** The body of `POST /v1/chat/completions` (OpenAI's fields; unknown ones go to the provider). */
export interface ChatCompletionBody {
  model: string;
  messages: ChatMessage[];
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  tools?: ToolSpec[];
  temperature?: number | null;
  max_tokens?: number | null;
  user?: string;
  [field: string]: unknown;
}

/** Fields agentd reads itself; everything else is passed to the provider untouched. */
const OWN_FIELDS = new Set([
  'model',
  'messages',
  'stream',
  'stream_options',
  'tools',
  'temperature',
  'max_tokens',
]);

/** The provider-agnostic request a completion body asks for. */
export function chatRequestOf(body: ChatCompletionBody): Omit<ChatRequest, 'model'> {
  const request: Omit<ChatRequest, 'model'> = { messages: body.messages };
  if (body.tools !== undefined && body.tools.length > 0) request.tools = body.tools;
  if (typeof body.temperature === 'number') request.temperature = body.temperature;
  if (typeof body.max_tokens === 'number') request.maxTokens = body.max_tokens;
  let extra: Record<string, unknown> | undefined;
  for (const key in body) {
    if (OWN_FIELDS.has(key)) continue;
    const value = body[key];
    if (value === undefined) continue;
    extra ??= {};
    extra[key] = value;
  }
  if (extra !== undefined) request.extra = extra;
  return request;
}

/** True when the client asked for the final usage chunk. */
export function wantsUsage(body: ChatCompletionBody): boolean {
  return body.stream_options?.include_usage === true;
}

/** The text of a message's content: a string, or the text parts of a content array. */
export function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const parts: string[] = [];
  for (const part of content) {
    if (part !== null && typeof part === 'object' && (part as { type?: unknown }).type === 'text') {
      const text = (part as { text?: unknown }).text;
      if (typeof text === 'string') parts.push(text);
    }
  }
  return parts.join('\n');
}

/**
 * The input of an agent-mode task: the last user message. Without a session, earlier turns of the
 * conversation the client sent come first as a transcript, so a stateless client keeps its context;
 * with a session, the session already holds them.
 */
export function agentInput(messages: readonly ChatMessage[], hasSession: boolean): string {
  let last = -1;
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]!.role === 'user') {
      last = i;
      break;
    }
  }
  if (last === -1) {
    throw new InvalidRequestError('`messages` needs a user message to run an agent', {
      details: { field: 'messages' },
    });
  }
  const question = textOf(messages[last]!.content);
  if (question === '') {
    throw new InvalidRequestError('the last user message has no text', {
      details: { field: `messages.${last}.content` },
    });
  }
  if (hasSession) return question;
  const earlier: string[] = [];
  for (let i = 0; i < last; i++) {
    const message = messages[i]!;
    if (message.role !== 'user' && message.role !== 'assistant') continue;
    const text = textOf(message.content);
    if (text !== '') earlier.push(`${message.role}: ${text}`);
  }
  if (earlier.length === 0) return question;
  return `Conversation so far:\n${earlier.join('\n')}\n\nuser: ${question}`;
}
