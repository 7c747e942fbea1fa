import { randomFillSync } from 'node:crypto';

/** Random bytes drawn in bulk (one system call per 409 ids), as `crypto.randomUUID` does. */
const pool = Buffer.allocUnsafe(4096);
let poolOffset = pool.length;
/** The id being written, as ASCII; its time part is rewritten only when the millisecond changes. */
const id = Buffer.from('00000000-0000-7000-8000-000000000000', 'latin1');
let prefixMs = -1;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** Where the random nibbles go (the version nibble 7 and the dashes stay). */
const RANDOM_AT = [15, 16, 17, 20, 21, 22, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35];

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Ids made later sort later,
 * so rows keyed by them append to the end of a B-tree instead of touching a random page each.
 * Written into one buffer and read out as one flat string: `randomUUID()` builds its string
 * from pieces, and the time prefix joined to it made a rope that every Map lookup and SQLite
 * bind flattened again.
 */
export function uuidv7(now: number = Date.now()): string {
  if (now !== prefixMs) {
    // xxxxxxxx-xxxx-7: the 12 hex digits of the time around the first dash.
    let time = now;
    for (let i = 12; i >= 0; i--) {
      if (i === 8) continue;
      id[i] = HEX[time % 16]!;
      time = Math.floor(time / 16);
    }
    prefixMs = now;
  }
  if (poolOffset + 10 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  for (let i = 0; i < RANDOM_AT.length; i += 2) {
    const byte = pool[poolOffset++]!;
    id[RANDOM_AT[i]!] = HEX[byte >> 4]!;
    id[RANDOM_AT[i + 1]!] = HEX[byte & 15]!;
  }
  // The variant (RFC 9562 §4.1): 10xx.
  id[19] = HEX[8 | (pool[poolOffset++]! & 3)]!;
  return id.toString('latin1', 0, 36);
}
