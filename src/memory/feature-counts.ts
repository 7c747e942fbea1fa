/**
 * Counts by 32-bit feature id in one open-addressing table (linear probing, backward-shift
 * deletion, so no tombstones): the hashing embedder's document frequencies. Every stored memory
 * updates dozens of them, and a `Map` of that size cost three times as much per update. Ids are
 * already avalanche hashes, so their low bits pick the slot. Within one document an id counts once.
 */
export class FeatureCounts {
  #keys = new Int32Array(1024);
  /** 0 marks a free slot: a count that falls to 0 leaves the table. */
  #counts = new Int32Array(1024);
  /** The document that last counted each slot's id. */
  #marks = new Int32Array(1024);
  #mask = 1023;
  #size = 0;
  #document = 1;

  /** Distinct ids with a count. */
  get size(): number {
    return this.#size;
  }

  /** The count of an id (0 when absent). */
  get(id: number): number {
    const keys = this.#keys;
    const counts = this.#counts;
    for (let slot = id & this.#mask; counts[slot] !== 0; slot = (slot + 1) & this.#mask)
      if (keys[slot] === id) return counts[slot]!;
    return 0;
  }

  /** Starts a document: from now on `count` takes each id once until the next `nextDocument`. */
  nextDocument(): void {
    if (this.#document === 0x7fffffff) {
      this.#marks.fill(0);
      this.#document = 0;
    }
    this.#document++;
  }

  /** Adds `delta` to an id's count, once per document; an absent id is not taken below zero. */
  count(id: number, delta: 1 | -1): void {
    const keys = this.#keys;
    const counts = this.#counts;
    const mask = this.#mask;
    let slot = id & mask;
    while (counts[slot] !== 0 && keys[slot] !== id) slot = (slot + 1) & mask;
    if (counts[slot] === 0) {
      if (delta < 0) return;
      keys[slot] = id;
      counts[slot] = 1;
      this.#marks[slot] = this.#document;
      if (++this.#size * 2 > counts.length) this.#grow();
      return;
    }
    if (this.#marks[slot] === this.#document) return;
    this.#marks[slot] = this.#document;
    counts[slot]! += delta;
    if (counts[slot] === 0) this.#vacate(slot);
  }

  /** Frees a slot, moving later entries of its probe run back so that every id stays reachable. */
  #vacate(slot: number): void {
    const keys = this.#keys;
    const counts = this.#counts;
    const marks = this.#marks;
    const mask = this.#mask;
    let hole = slot;
    for (let next = (slot + 1) & mask; counts[next] !== 0; next = (next + 1) & mask) {
      // An entry may fill the hole when the hole lies between its home slot and where it sits.
      if (((next - (keys[next]! & mask)) & mask) >= ((next - hole) & mask)) {
        keys[hole] = keys[next]!;
        counts[hole] = counts[next]!;
        marks[hole] = marks[next]!;
        hole = next;
      }
    }
    counts[hole] = 0;
    marks[hole] = 0;
    this.#size--;
  }

  #grow(): void {
    const keys = this.#keys;
    const counts = this.#counts;
    const marks = this.#marks;
    const capacity = counts.length * 2;
    this.#keys = new Int32Array(capacity);
    this.#counts = new Int32Array(capacity);
    this.#marks = new Int32Array(capacity);
    this.#mask = capacity - 1;
    for (let from = 0; from < counts.length; from++) {
      if (counts[from] === 0) continue;
      let slot = keys[from]! & this.#mask;
      while (this.#counts[slot] !== 0) slot = (slot + 1) & this.#mask;
      this.#keys[slot] = keys[from]!;
      this.#counts[slot] = counts[from]!;
      this.#marks[slot] = marks[from]!;
    }
  }
}
