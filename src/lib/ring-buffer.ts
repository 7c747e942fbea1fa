const INITIAL_SLOTS = 8;

/** A fixed-capacity FIFO that overwrites its oldest item when full. */
export class RingBuffer<T> {
  readonly capacity: number;
  #items: (T | undefined)[];
  #head = 0;
  #length = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
    this.capacity = capacity;
    // Room for a short task's events (queued … completed) without growing: an empty array grows
    // to 17 slots at its first item, kept by every task in flight and every recent one.
    this.#items = new Array(Math.min(capacity, INITIAL_SLOTS));
  }

  get length(): number {
    return this.#length;
  }

  /** Appends an item; returns the item it evicted, if the buffer was full. */
  push(item: T): T | undefined {
    const index = (this.#head + this.#length) % this.capacity;
    if (this.#length < this.capacity) {
      this.#items[index] = item;
      this.#length++;
      return undefined;
    }
    const evicted = this.#items[this.#head];
    this.#items[this.#head] = item;
    this.#head = (this.#head + 1) % this.capacity;
    return evicted;
  }

  /** The item at position `i` from the oldest (0) to the newest (length - 1). */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.#length) return undefined;
    return this.#items[(this.#head + i) % this.capacity];
  }

  /** The newest item. */
  last(): T | undefined {
    return this.at(this.#length - 1);
  }

  /** Removes and returns the oldest item. */
  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.capacity;
    this.#length--;
    return item;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.#length; i++) yield this.#items[(this.#head + i) % this.capacity] as T;
  }
}
