import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CoarseTimer } from '../../src/lib/coarse-timer.js';
import { RingBuffer } from '../../src/lib/ring-buffer.js';

describe('CoarseTimer', () => {
  it('fires a scheduled callback with its argument, once', async () => {
    const timer = new CoarseTimer(5);
    const fired: string[] = [];
    timer.schedule(10, (arg: string) => fired.push(arg), 'a');
    assert.equal(timer.size, 1);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.deepEqual(fired, ['a']);
    assert.equal(timer.size, 0);
  });

  it('never fires a cancelled entry, and cancelling twice is harmless', async () => {
    const timer = new CoarseTimer(5);
    let fired = 0;
    const entry = timer.schedule(10, () => fired++, undefined);
    timer.cancel(entry);
    timer.cancel(entry);
    assert.equal(timer.size, 0);
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.equal(fired, 0);
  });

  it('fires exactly the entries left after cancelling others of the same tick in any order', async () => {
    const timer = new CoarseTimer(5);
    const fired: number[] = [];
    const entries = Array.from({ length: 10 }, (_, i) => timer.schedule(20, (n: number) => fired.push(n), i));
    for (const i of [0, 9, 4, 5, 2]) timer.cancel(entries[i]);
    assert.equal(timer.size, 5);
    while (timer.size > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(
      fired.sort((a, b) => a - b),
      [1, 3, 6, 7, 8],
    );
  });

  it('fires thousands of entries, each one no earlier than its deadline', async () => {
    const timer = new CoarseTimer(5);
    let fired = 0;
    let early = 0;
    for (let i = 0; i < 2000; i++) {
      const delay = (i % 4) * 10;
      const due = performance.now() + delay;
      timer.schedule(
        delay,
        (deadline: number) => {
          fired++;
          if (performance.now() < deadline) early++;
        },
        due,
      );
    }
    while (timer.size > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(fired, 2000);
    assert.equal(early, 0);
  });

  it('fires an entry scheduled for a tick that has already fired', async () => {
    // A clock frozen on a tick boundary: a zero delay then names the tick being fired.
    const realNow = performance.now;
    const frozen = Math.ceil(realNow.call(performance) / 5) * 5 + 5;
    performance.now = () => frozen;
    try {
      const timer = new CoarseTimer(5);
      const fired: string[] = [];
      timer.schedule(
        0,
        () => {
          fired.push('first');
          timer.schedule(0, () => fired.push('second'), undefined);
        },
        undefined,
      );
      performance.now = () => frozen + 5;
      for (let i = 0; i < 50 && timer.size > 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
      performance.now = () => frozen + 10;
      for (let i = 0; i < 50 && timer.size > 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
      assert.deepEqual(fired, ['first', 'second']);
    } finally {
      performance.now = realNow;
    }
  });
});

describe('RingBuffer', () => {
  it('keeps the newest items and reports what it evicts', () => {
    const ring = new RingBuffer<number>(3);
    assert.equal(ring.push(1), undefined);
    ring.push(2);
    ring.push(3);
    assert.equal(ring.push(4), 1);
    assert.deepEqual([...ring], [2, 3, 4]);
    assert.equal(ring.at(0), 2);
    assert.equal(ring.last(), 4);
    assert.equal(ring.shift(), 2);
    assert.deepEqual([...ring], [3, 4]);
  });

  it('rejects a capacity that is not a positive integer', () => {
    assert.throws(() => new RingBuffer(0), RangeError);
  });
});
