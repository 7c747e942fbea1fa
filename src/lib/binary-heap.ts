/**
 * A binary heap of items in the order `before` defines (`before(a, b)`: a leaves first). Push
 * and pop are O(log n); `remove` is O(n), for the rare item that leaves early.
 */
export class BinaryHeap<T> {
  readonly #items: T[] = [];
  readonly #before: (a: T, b: T) => boolean;

  constructor(before: (a: T, b: T) => boolean) {
    this.#before = before;
  }

  get size(): number {
    return this.#items.length;
  }

  /** The item `pop` would return. */
  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    this.#items.push(item);
    this.#siftUp(this.#items.length - 1);
  }

  pop(): T | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0) {
      items[0] = last!;
      this.#siftDown(0);
    }
    return top;
  }

  /** Removes the first item `matches` accepts; whether there was one. */
  remove(matches: (item: T) => boolean): boolean {
    const items = this.#items;
    const index = items.findIndex(matches);
    if (index === -1) return false;
    const last = items.pop()!;
    if (index < items.length) {
      items[index] = last;
      this.#siftDown(index);
      this.#siftUp(index);
    }
    return true;
  }

  #siftUp(start: number): void {
    const items = this.#items;
    let i = start;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(items[i]!, items[parent]!)) return;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  #siftDown(start: number): void {
    const items = this.#items;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let best = i;
      if (left < items.length && this.#before(items[left]!, items[best]!)) best = left;
      if (right < items.length && this.#before(items[right]!, items[best]!)) best = right;
      if (best === i) return;
      [items[i], items[best]] = [items[best]!, items[i]!];
      i = best;
    }
  }
}
