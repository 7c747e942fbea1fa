interface Entry<T> {
  item: T;
  priority: number;
  seq: number;
}

/** A binary heap: highest priority first, first-in first-out among equal priorities. */
export class PriorityQueue<T> {
  #heap: Entry<T>[] = [];
  #seq = 0;

  get size(): number {
    return this.#heap.length;
  }

  push(item: T, priority: number): void {
    const heap = this.#heap;
    heap.push({ item, priority, seq: this.#seq++ });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  /** The priority of the item `pop` would return. */
  peekPriority(): number | undefined {
    return this.#heap[0]?.priority;
  }

  pop(): T | undefined {
    const heap = this.#heap;
    if (heap.length === 0) return undefined;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      this.#sinkDown(0);
    }
    return top.item;
  }

  /** Removes a specific item (O(n)); returns whether it was queued. */
  remove(item: T): boolean {
    const heap = this.#heap;
    const index = heap.findIndex((entry) => entry.item === item);
    if (index === -1) return false;
    const last = heap.pop()!;
    if (index < heap.length) {
      heap[index] = last;
      this.#sinkDown(index);
      let i = index;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!before(heap[i]!, heap[parent]!)) break;
        [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
        i = parent;
      }
    }
    return true;
  }

  #sinkDown(start: number): void {
    const heap = this.#heap;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let best = i;
      if (left < heap.length && before(heap[left]!, heap[best]!)) best = left;
      if (right < heap.length && before(heap[right]!, heap[best]!)) best = right;
      if (best === i) return;
      [heap[i], heap[best]] = [heap[best]!, heap[i]!];
      i = best;
    }
  }
}

function before<T>(a: Entry<T>, b: Entry<T>): boolean {
  return a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq);
}
