import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Arena } from '../../src/memory/vector-arena.js';

/** A unit vector along axis `i % d`, scaled by `i` (stored at unit length). */
function axis(d: number, i: number): Float32Array {
  const v = new Float32Array(d);
  v[i % d] = i + 1;
  return v;
}

describe('vector arena', () => {
  it('keeps every row across block boundaries, through growth, replacement and deletes', () => {
    const d = 3;
    const arena = new Arena(d, 4);
    for (let key = 0; key < 11; key++) arena.put(key, axis(d, key));
    assert.equal(arena.size, 11);
    assert.deepEqual(
      arena.matrices().map((b) => [b.start, b.matrix.length / d]),
      [
        [0, 4],
        [4, 4],
        [8, 3],
      ],
    );
    // Each block is its own buffer, from its start: what usearch reads.
    for (const block of arena.matrices()) assert.equal(block.matrix.byteOffset, 0);
    // Replacing a row in a middle block rewrites it in place.
    arena.put(5, new Float32Array([0, 0, -2]));
    assert.deepEqual([...arena.row(5)!], [0, 0, -1]);
    // Deleting from the first block moves the last row (from the last block) into the hole.
    arena.delete(1);
    arena.delete(6);
    assert.equal(arena.size, 9);
    assert.equal(arena.row(1), undefined);
    for (let key = 0; key < 11; key++) {
      if (key === 1 || key === 6) continue;
      const expected = key === 5 ? [0, 0, -1] : [...axis(d, key)].map((x) => Math.sign(x));
      assert.deepEqual([...arena.row(key)!], expected, `row of ${key}`);
    }
    // The blocks still list each key once, at its slot.
    const listed = arena.matrices().flatMap((b) => arena.keys.slice(b.start, b.start + b.matrix.length / d));
    assert.deepEqual(
      listed.toSorted((a, b) => a - b),
      [0, 2, 3, 4, 5, 7, 8, 9, 10],
    );
    for (const key of listed) {
      const slot = arena.slots.get(key)!;
      const block = arena.matrices().find((b) => slot >= b.start && slot < b.start + b.matrix.length / d)!;
      const offset = (slot - block.start) * d;
      assert.deepEqual([...block.matrix.subarray(offset, offset + d)], [...arena.row(key)!]);
    }
    // Emptied down to one block and filled again past the boundary.
    for (const key of listed) arena.delete(key);
    assert.equal(arena.size, 0);
    assert.deepEqual(arena.matrices(), []);
    for (let key = 100; key < 106; key++) arena.put(key, axis(d, key));
    assert.deepEqual(
      arena.matrices().map((b) => b.matrix.length / d),
      [4, 2],
    );
    assert.deepEqual(
      [...arena.row(105)!],
      [...axis(d, 105)].map((x) => Math.sign(x)),
    );
  });
});
