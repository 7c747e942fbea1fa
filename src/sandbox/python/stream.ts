/**
 * One run's share of a child's stdout or stderr. The child ends each run's output with
 * `\n<end token>\n`; the token is random per run and never given to the program, so the program
 * cannot fake the end of its output. Bytes are kept up to the cap; a stream that passes the cap
 * before its end token reports `overflow` and the run is stopped.
 */
export class RunStream {
  readonly #cap: number;
  readonly #marker: Buffer;
  readonly #chunks: Buffer[] = [];
  #size = 0;
  #tail: Buffer = Buffer.alloc(0);
  /** Offset of the `\n` that precedes the end token, once seen. */
  #end = -1;

  constructor(cap: number, endToken: string) {
    this.#cap = cap;
    this.#marker = Buffer.from(`\n${endToken}\n`);
  }

  get ended(): boolean {
    return this.#end !== -1;
  }

  /** Takes a chunk; 'overflow' when the output passed the cap before it ended. */
  push(chunk: Buffer): 'more' | 'end' | 'overflow' {
    if (this.#end !== -1) return 'end';
    const window = this.#tail.length === 0 ? chunk : Buffer.concat([this.#tail, chunk]);
    const at = window.indexOf(this.#marker);
    if (at !== -1) {
      this.#end = this.#size - this.#tail.length + at;
      this.#keep(chunk);
      return 'end';
    }
    this.#keep(chunk);
    const keepTail = this.#marker.length - 1;
    this.#tail = window.length > keepTail ? window.subarray(window.length - keepTail) : window;
    return this.#size > this.#cap + this.#marker.length ? 'overflow' : 'more';
  }

  /** The program's output (without the end marker), cut at the cap. */
  text(): { text: string; truncated: boolean } {
    const all = Buffer.concat(this.#chunks);
    const length = this.#end === -1 ? all.length : this.#end;
    const truncated = length > this.#cap;
    return { text: all.subarray(0, Math.min(length, this.#cap)).toString('utf8'), truncated };
  }

  #keep(chunk: Buffer): void {
    // Past the cap only the marker matters; the bytes themselves are not needed.
    if (this.#size <= this.#cap + this.#marker.length) this.#chunks.push(chunk);
    this.#size += chunk.length;
  }
}
