import type { SessionCaps } from './types.js';

/** A stored message as the caps see it. */
export interface CapRow {
  seq: number;
  bytes: number;
  tokens: number;
  /** 0 for a message, 1 for a compaction summary. */
  kind: number;
}

/** What dropping the oldest messages removed. */
export interface CapDrop {
  /** The new oldest retained sequence number. */
  firstSeq: number;
  bytes: number;
  /** Tokens dropped from the part of the session after its summary. */
  windowTokens: number;
}

/** True when a session holding `count` messages of `bytes` bytes is over a cap. */
export function overCaps(caps: SessionCaps, count: number, bytes: number): boolean {
  return (
    (caps.maxMessages !== undefined && count > caps.maxMessages) ||
    (caps.maxBytes !== undefined && bytes > caps.maxBytes)
  );
}

/**
 * Walks a session's messages oldest first and says how many must go for it to fit its caps.
 * Dropping is strict: a single message larger than `maxBytes` is dropped too.
 */
export function dropToCaps(
  caps: SessionCaps,
  count: number,
  bytes: number,
  summaryThrough: number,
  oldestFirst: Iterable<CapRow>,
): CapDrop | undefined {
  let firstSeq = 0;
  let dropped = 0;
  let windowTokens = 0;
  for (const row of oldestFirst) {
    if (!overCaps(caps, count, bytes - dropped)) break;
    count--;
    dropped += row.bytes;
    if (row.seq > summaryThrough && row.kind === 0) windowTokens += row.tokens;
    firstSeq = row.seq + 1;
  }
  return firstSeq === 0 ? undefined : { firstSeq, bytes: dropped, windowTokens };
}
