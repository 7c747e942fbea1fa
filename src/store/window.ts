import type { ChatMessage } from '../llm/index.js';

/**
 * Picks a session window from messages ordered newest first: as many as fit in `maxMessages` and
 * `maxTokens`, returned oldest first. A window never starts with tool results whose assistant
 * call fell outside it, since providers reject orphaned tool messages.
 */
export function trimWindow(
  newestFirst: readonly { message: ChatMessage; tokens: number }[],
  maxMessages: number,
  maxTokens: number,
): ChatMessage[] {
  let count = 0;
  let tokens = 0;
  for (const row of newestFirst) {
    if (count >= maxMessages || tokens + row.tokens > maxTokens) break;
    tokens += row.tokens;
    count++;
  }
  let start = count - 1;
  while (start >= 0 && newestFirst[start]!.message.role === 'tool') start--;
  const window: ChatMessage[] = [];
  for (let i = start; i >= 0; i--) window.push(newestFirst[i]!.message);
  return window;
}

/** Opaque pagination cursors: base64url of a JSON tuple. */
export function encodeCursor(parts: (string | number)[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

export function decodeCursor(cursor: string): (string | number)[] | undefined {
  try {
    const parts: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    return Array.isArray(parts) ? (parts as (string | number)[]) : undefined;
  } catch {
    return undefined;
  }
}
