import { BinaryHeap } from '../lib/binary-heap.js';

interface Entry<T> {
  item: T;
  priority: number;
  seq: number;
}

/** Highest priority first, first-in first-out among equal priorities. */
export class PriorityQueue<T> {
  readonly #heap = new BinaryHeap<Entry<T>>(
    (a, b) => a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq),
  );
  #seq = 0;

  get size(): number {
    return this.#heap.size;
  }

  push(item: T, priority: number): void {
    this.#heap.push({ item, priority, seq: this.#seq++ });
  }

  /** The priority of the item `pop` would return. */
  peekPriority(): number | undefined {
    return this.#heap.peek()?.priority;
  }

  pop(): T | undefined {
    return this.#heap.pop()?.item;
  }

  /** Removes a specific item (O(n)); returns whether it was queued. */
  remove(item: T): boolean {
    return this.#heap.remove((entry) => entry.item === item);
  }
}
