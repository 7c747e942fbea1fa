// The WebAssembly JS API as Node provides it. TypeScript declares it only in the DOM libraries,
// which this project does not load (they would make browser globals look available); this is
// the subset the sandbox uses.
declare global {
  namespace WebAssembly {
    interface MemoryDescriptor {
      initial: number;
      maximum?: number;
      shared?: boolean;
    }
    class Memory {
      constructor(descriptor: MemoryDescriptor);
      readonly buffer: ArrayBuffer;
      grow(delta: number): number;
    }
    class Module {
      constructor(bytes: BufferSource);
      static imports(module: Module): { module: string; name: string; kind: string }[];
      static exports(module: Module): { name: string; kind: string }[];
    }
    type ExportValue = ((...args: never[]) => unknown) | Memory | object;
    type Exports = Record<string, ExportValue>;
    type ImportValue = ((...args: never[]) => unknown) | Memory | object | number;
    type Imports = Record<string, Record<string, ImportValue>>;
    class Instance {
      constructor(module: Module, imports?: Imports);
      readonly exports: Exports;
    }
    function compile(bytes: BufferSource): Promise<Module>;
  }
  type BufferSource = ArrayBufferView | ArrayBuffer;
}

export {};
