/**
 * Rewrites a WASI module so that the host decides its memory: the module's own memory
 * definition becomes an import (`env.memory`), and each run instantiates it with a
 * `WebAssembly.Memory` whose maximum is that run's memory limit. CPython's build declares a
 * memory with no maximum (4 GiB on wasm32); with this, one compiled module serves every limit.
 * Custom sections (13 MB of DWARF debug info in the CPython build) are dropped on the way.
 */

export interface PatchedModule {
  bytes: Buffer;
  /** The memory's declared minimum, in 64 KiB pages (an instance's memory starts at it). */
  minPages: number;
}

const SECTION_CUSTOM = 0;
const SECTION_IMPORT = 2;
const SECTION_MEMORY = 5;
const KIND_MEMORY = 2;

/** Moves the module's memory to an import and strips custom sections. Throws on an unexpected layout. */
export function importMemory(wasm: Uint8Array): PatchedModule {
  const reader = new Reader(wasm);
  if (wasm.length < 8 || reader.u32le(0) !== 0x6d736100) throw new Error('not a WebAssembly module');
  reader.at = 8;
  const sections: { id: number; body: Uint8Array }[] = [];
  let minPages = -1;
  let hasImports = false;
  while (reader.at < wasm.length) {
    const id = wasm[reader.at++]!;
    const size = reader.leb();
    const body = wasm.subarray(reader.at, reader.at + size);
    reader.at += size;
    if (id === SECTION_CUSTOM) continue;
    if (id === SECTION_MEMORY) {
      const memory = new Reader(body);
      if (memory.leb() !== 1) throw new Error('expected exactly one memory');
      const flags = body[memory.at++]!;
      if ((flags & ~1) !== 0) throw new Error('shared or 64-bit memories are not supported');
      minPages = memory.leb();
      continue;
    }
    if (id === SECTION_IMPORT) hasImports = true;
    sections.push({ id, body });
  }
  if (minPages < 0) throw new Error('the module defines no memory of its own');
  const entry = Buffer.concat([
    name('env'),
    name('memory'),
    Buffer.from([KIND_MEMORY, 0x00]), // limits: minimum only; the instance's Memory sets the maximum
    leb(minPages),
  ]);
  // A WASI module always imports its system calls, so the import section exists.
  if (!hasImports) throw new Error('the module imports nothing (not a WASI program)');
  const out: Uint8Array[] = [wasm.subarray(0, 8)];
  for (const section of sections) {
    let body = section.body;
    if (section.id === SECTION_IMPORT) {
      const imports = new Reader(body);
      const count = imports.leb();
      body = Buffer.concat([leb(count + 1), body.subarray(imports.at), entry]);
    }
    out.push(Buffer.from([section.id]), leb(body.length), body);
  }
  return { bytes: Buffer.concat(out), minPages };
}

class Reader {
  readonly bytes: Uint8Array;
  at = 0;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  u32le(offset: number): number {
    const b = this.bytes;
    return (b[offset]! | (b[offset + 1]! << 8) | (b[offset + 2]! << 16) | (b[offset + 3]! << 24)) >>> 0;
  }

  leb(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      const byte = this.bytes[this.at++];
      if (byte === undefined) throw new Error('truncated LEB128');
      result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return result;
      scale *= 128;
    }
  }
}

function leb(value: number): Buffer {
  const out: number[] = [];
  let rest = value;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    out.push(byte);
  } while (rest > 0);
  return Buffer.from(out);
}

function name(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([leb(bytes.length), bytes]);
}
