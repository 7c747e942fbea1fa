import type { ChatMessage } from '../llm/index.js';

/** A message with its token estimate, as windows are cut from. */
export interface WindowRow {
  message: ChatMessage;
  tokens: number;
}

/**
 * Picks a session window from messages ordered newest first: as many as fit in `maxMessages` and
 * `maxTokens`, returned oldest first. A compaction `summary` comes first when every message after
 * it fits too, since a window is a contiguous stretch of the conversation. A window never starts
 * with tool results whose assistant call fell outside it, since providers reject orphaned tool
 * messages.
 */
export function trimWindow(
  newestFirst: readonly WindowRow[],
  maxMessages: number,
  maxTokens: number,
  summary?: WindowRow,
): ChatMessage[] {
  let count = 0;
  let tokens = 0;
  for (const row of newestFirst) {
    if (count >= maxMessages || tokens + row.tokens > maxTokens) break;
    tokens += row.tokens;
    count++;
  }
  const window: ChatMessage[] = [];
  if (
    summary !== undefined &&
    count === newestFirst.length &&
    count < maxMessages &&
    tokens + summary.tokens <= maxTokens
  ) {
    window.push(summary.message);
    for (let i = count - 1; i >= 0; i--) window.push(newestFirst[i]!.message);
    return window;
  }
  let start = count - 1;
  while (start >= 0 && newestFirst[start]!.message.role === 'tool') start--;
  for (let i = start; i >= 0; i--) window.push(newestFirst[i]!.message);
  return window;
}

/** The same window cut from messages ordered oldest first (a cached session tail). */
export function trimTail(
  oldestFirst: readonly WindowRow[],
  maxMessages: number,
  maxTokens: number,
  summary: WindowRow | undefined,
): ChatMessage[] {
  const last = oldestFirst.length - 1;
  let count = 0;
  let tokens = 0;
  for (let i = last; i >= 0; i--) {
    const row = oldestFirst[i]!;
    if (count >= maxMessages || tokens + row.tokens > maxTokens) break;
    tokens += row.tokens;
    count++;
  }
  let first = oldestFirst.length - count;
  const window: ChatMessage[] = [];
  if (summary !== undefined && first === 0 && count < maxMessages && tokens + summary.tokens <= maxTokens) {
    window.push(summary.message);
  } else {
    while (first <= last && oldestFirst[first]!.message.role === 'tool') first++;
  }
  for (let i = first; i <= last; i++) window.push(oldestFirst[i]!.message);
  return window;
}

/** The system message a compaction summary becomes in the window. */
export function summaryMessage(content: string): ChatMessage {
  return { role: 'system', content: `Summary of the earlier conversation:\n${content}` };
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
