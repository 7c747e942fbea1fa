/** Rows of a full block: a partition larger than this grows by whole blocks. */
export const BLOCK_ROWS = 4096;
/** Rows of a new partition's first block, which doubles up to `BLOCK_ROWS`. */
const FIRST_ROWS = 16;

/** Writes `vector` into `data` at `offset`, scaled to unit length; a zero vector stays zero. */
export function writeUnit(data: Float32Array, offset: number, vector: Float32Array): void {
  data.set(vector, offset);
  const end = offset + vector.length;
  let norm = 0;
  for (let i = offset; i < end; i++) norm += data[i]! * data[i]!;
  if (norm === 1) return;
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = offset; i < end; i++) data[i]! *= scale;
}

/** The used rows of one block, from its buffer's start, and the slot of its first row. */
export interface ArenaBlock {
  start: number;
  matrix: Float32Array;
}

/**
 * The vectors of one partition, unit length, dense (row = slot), in blocks of `blockRows` rows.
 * Only the first block grows (by doubling, so a small partition stays small); later blocks are
 * allocated whole. A large partition therefore never copies what it holds: one doubling matrix
 * cost a copy and a full GC at every power of two (20–70 ms at 8k, 16k… vectors). Each block is
 * its own buffer, which is what usearch needs: it reads a typed array from its buffer's start.
 */
export class Arena {
  readonly keys: number[] = [];
  readonly slots = new Map<number, number>();
  readonly #blocks: Float32Array[];
  readonly #d: number;
  readonly #blockRows: number;

  constructor(dimensions: number, blockRows = BLOCK_ROWS) {
    this.#d = dimensions;
    this.#blockRows = blockRows;
    this.#blocks = [new Float32Array(Math.min(FIRST_ROWS, blockRows) * dimensions)];
  }

  get size(): number {
    return this.keys.length;
  }

  put(key: number, vector: Float32Array): void {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = this.keys.length;
      this.#reserve(slot);
      this.keys.push(key);
      this.slots.set(key, slot);
    }
    const rows = this.#blockRows;
    writeUnit(this.#blocks[(slot / rows) | 0]!, (slot % rows) * this.#d, vector);
  }

  /** Makes room for row `slot`, the next one. */
  #reserve(slot: number): void {
    const rows = this.#blockRows;
    const index = (slot / rows) | 0;
    const blocks = this.#blocks;
    if (index === blocks.length) {
      blocks.push(new Float32Array(rows * this.#d));
      return;
    }
    const block = blocks[index]!;
    if ((slot % rows) * this.#d < block.length) return;
    const grown = new Float32Array(Math.min(block.length * 2, rows * this.#d));
    grown.set(block);
    blocks[index] = grown;
  }

  delete(key: number): void {
    const slot = this.slots.get(key)!;
    const last = this.keys.length - 1;
    if (slot !== last) {
      // The last row fills the hole: the rows stay dense.
      const rows = this.#blockRows;
      this.#blocks[(slot / rows) | 0]!.set(this.#row(last), (slot % rows) * this.#d);
      const moved = this.keys[last]!;
      this.keys[slot] = moved;
      this.slots.set(moved, slot);
    }
    this.keys.pop();
    this.slots.delete(key);
  }

  /** The stored row of a key (a view into its block). */
  row(key: number): Float32Array | undefined {
    const slot = this.slots.get(key);
    return slot === undefined ? undefined : this.#row(slot);
  }

  #row(slot: number): Float32Array {
    const rows = this.#blockRows;
    const offset = (slot % rows) * this.#d;
    return this.#blocks[(slot / rows) | 0]!.subarray(offset, offset + this.#d);
  }

  /** The used rows, block by block (a partition up to `blockRows` rows is one block). */
  matrices(): ArenaBlock[] {
    const out: ArenaBlock[] = [];
    const rows = this.#blockRows;
    for (let start = 0; start < this.size; start += rows) {
      const used = Math.min(rows, this.size - start);
      out.push({ start, matrix: this.#blocks[start / rows]!.subarray(0, used * this.#d) });
    }
    return out;
  }
}
