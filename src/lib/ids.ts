import { randomUUID } from 'node:crypto';

/** The time part of the last id made, and its millisecond: ids made in the same ms share it. */
let prefixMs = -1;
let prefix = '';

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Ids made later sort later,
 * so rows keyed by them append to the end of a B-tree instead of touching a random page each.
 */
export function uuidv7(now: number = Date.now()): string {
  if (now !== prefixMs) {
    const time = now.toString(16).padStart(12, '0');
    // xxxxxxxx-xxxx-7xxx-: time fills the first 12 hex digits; the version nibble becomes 7.
    prefix = `${time.slice(0, 8)}-${time.slice(8, 12)}-7`;
    prefixMs = now;
  }
  return prefix + randomUUID().slice(15);
}
