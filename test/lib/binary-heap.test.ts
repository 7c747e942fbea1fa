import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BinaryHeap } from '../../src/lib/binary-heap.js';

describe('BinaryHeap', () => {
  it('pops in the order `before` defines through random pushes, pops and removals', () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const heap = new BinaryHeap<number>((a, b) => a < b);
    const model: number[] = [];
    for (let step = 0; step < 5000; step++) {
      const roll = random();
      if (roll < 0.5) {
        const value = Math.floor(random() * 100);
        heap.push(value);
        model.push(value);
      } else if (roll < 0.8) {
        model.sort((a, b) => a - b);
        assert.equal(heap.peek(), model[0]);
        assert.equal(heap.pop(), model.shift());
      } else {
        const value = Math.floor(random() * 100);
        const index = model.indexOf(value);
        assert.equal(
          heap.remove((item) => item === value),
          index !== -1,
        );
        if (index !== -1) model.splice(index, 1);
      }
      assert.equal(heap.size, model.length);
    }
    model.sort((a, b) => a - b);
    const drained: number[] = [];
    for (let item = heap.pop(); item !== undefined; item = heap.pop()) drained.push(item);
    assert.deepEqual(drained, model);
  });
});
