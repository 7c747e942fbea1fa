import type { NewMessage } from './types.js';

/** Messages appended to one session, encoded once, when they are queued for the next commit. */
export interface QueuedMessages {
  sessionId: string;
  tenantId: string;
  messages: NewMessage[];
  /** Each message's stored JSON and its size in bytes. */
  json: string[];
  sizes: number[];
  bytes: number;
  tokens: number;
  /** When they were appended: the messages' `created_at` and the session's `updated_at`. */
  at: number;
}

/**
 * Encodes messages as they are appended, so that the caches can account for them before the
 * commit and the commit binds ready strings.
 */
export function queueMessages(
  sessionId: string,
  tenantId: string,
  messages: NewMessage[],
  at: number,
): QueuedMessages {
  const count = messages.length;
  const json: string[] = new Array(count);
  const sizes: number[] = new Array(count);
  let bytes = 0;
  let tokens = 0;
  for (let i = 0; i < count; i++) {
    const item = messages[i]!;
    const text = JSON.stringify(item.message);
    json[i] = text;
    const size = Buffer.byteLength(text);
    sizes[i] = size;
    bytes += size;
    tokens += item.tokens;
  }
  return { sessionId, tenantId, messages, json, sizes, bytes, tokens, at };
}
