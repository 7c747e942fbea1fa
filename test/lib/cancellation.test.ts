import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Cancellation, sleep } from '../../src/lib/cancellation.js';

describe('Cancellation', () => {
  it('aborts every registered target once, with its reason', () => {
    const cancellation = new Cancellation();
    const seen: string[] = [];
    const a = { abortWith: (e: Error) => seen.push(`a:${e.message}`) };
    const b = { abortWith: (e: Error) => seen.push(`b:${e.message}`) };
    cancellation.add(a);
    cancellation.add(b);
    cancellation.remove(b);
    cancellation.abortWith(new Error('first'));
    cancellation.abortWith(new Error('second'));
    assert.deepEqual(seen, ['a:first']);
    assert.equal(cancellation.reason?.message, 'first');
    cancellation.add(b);
    assert.deepEqual(seen, ['a:first', 'b:first'], 'a target added after abort is aborted at once');
  });

  it('gives a standard AbortSignal on demand, aborted with the same reason', () => {
    const cancellation = new Cancellation();
    const signal = cancellation.signal;
    assert.equal(signal.aborted, false);
    cancellation.abortWith(new Error('why'));
    assert.equal(signal.aborted, true);
    assert.equal((signal.reason as Error).message, 'why');
    const late = new Cancellation();
    late.abortWith(new Error('already'));
    assert.equal(late.signal.aborted, true);
  });

  it('has children that abort with the parent, or alone, and detach', () => {
    const parent = new Cancellation();
    const child = parent.child();
    const lone = parent.child();
    lone.abortWith(new Error('deadline'));
    assert.equal(parent.aborted, false);
    const detached = parent.child();
    detached.dispose();
    parent.abortWith(new Error('cancelled'));
    assert.equal(child.reason?.message, 'cancelled');
    assert.equal(lone.reason?.message, 'deadline');
    assert.equal(detached.aborted, false);
  });

  it('stops targets added after every earlier one was removed', () => {
    const cancellation = new Cancellation();
    const first = new Cancellation();
    const second = new Cancellation();
    cancellation.add(first);
    cancellation.remove(first);
    cancellation.add(second);
    cancellation.abortWith(new Error('stop'));
    assert.equal(first.aborted, false);
    assert.equal(second.reason?.message, 'stop');
  });

  it('interrupts a sleep', async () => {
    const cancellation = new Cancellation();
    setTimeout(() => cancellation.abortWith(new Error('stop')), 5);
    await assert.rejects(sleep(10_000, cancellation), /stop/);
    await sleep(1);
  });
});
