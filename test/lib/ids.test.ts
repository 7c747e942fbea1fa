import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { uuidv7 } from '../../src/lib/ids.js';

describe('uuidv7', () => {
  it('is a version-7 UUID whose first 48 bits are the time in milliseconds', () => {
    const id = uuidv7(0x0123456789ab);
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(id.startsWith('01234567-89ab-7'));
  });

  it('sorts by creation time and never repeats', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => uuidv7(1_700_000_000_000 + i));
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(Array.from({ length: 10_000 }, () => uuidv7())).size, 10_000);
  });
});
