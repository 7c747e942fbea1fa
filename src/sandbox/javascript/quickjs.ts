import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import releaseSyncModule from '@jitl/quickjs-wasmfile-release-sync';
import {
  type EmscriptenModuleLoader,
  type QuickJSContext,
  type QuickJSEmscriptenModule,
  type QuickJSFFI,
  type QuickJSHandle,
  type QuickJSRuntime,
  type QuickJSSyncVariant,
  QuickJSWASMModule,
} from 'quickjs-emscripten-core';
import { emptyResult, type SandboxResult } from '../types.js';

// The package's types describe its CommonJS entry; under ESM the default import is the variant.
const releaseSync = releaseSyncModule as unknown as QuickJSSyncVariant;

/** QuickJS's Emscripten build asks for at least this much memory (16 MiB). */
export const QUICKJS_MIN_MEMORY_BYTES = 256 * 65_536;
const PAGE = 65_536;
/** Longest uncaught-error trace kept on stderr. */
const MAX_TRACE_CHARS = 4_000;

/** What the engine needs to know about one run. */
export interface JsRunSpec {
  code: string;
  timeoutMs: number;
  memoryBytes: number;
  maxOutputBytes: number;
  maxStackBytes: number;
  /** Longest JSON text of the result that is returned. */
  maxResultChars: number;
}

/**
 * One QuickJS instance, made ahead of its run: its own WebAssembly.Instance and fixed-size
 * memory, a runtime and a context with the console installed. Making it touches the fresh
 * memory's pages and builds the context's intrinsics, which is most of a cold run's cost.
 */
class Prepared {
  readonly memory: WebAssembly.Memory;
  readonly memoryBytes: number;
  readonly runtime: QuickJSRuntime;
  readonly context: QuickJSContext;
  readonly encode: QuickJSHandle;
  readonly sink = new ConsoleSink();
  deadline = 0;
  timedOut = false;

  constructor(module: QuickJSWASMModule, memory: WebAssembly.Memory, memoryBytes: number, lineCap: number) {
    this.memory = memory;
    this.memoryBytes = memoryBytes;
    this.runtime = module.newRuntime();
    this.runtime.setInterruptHandler(() => {
      if (this.sink.overflow) return true;
      if (performance.now() < this.deadline) return false;
      this.timedOut = true;
      return true;
    });
    this.deadline = Number.POSITIVE_INFINITY;
    this.context = this.runtime.newContext();
    this.encode = installPrelude(this.context, this.sink, lineCap);
  }
}

// Runs once inside each fresh context. It installs a console that formats in the VM (one
// crossing per call, not per argument), cuts each line at the output cap before it crosses,
// and returns the JSON encoder used for the result; nothing else of the host is reachable.
const PRELUDE = `(function (write, cap) {
  'use strict';
  const str = (v) => {
    if (typeof v === 'string') return v;
    if (typeof v === 'function') return '[Function' + (v.name ? ': ' + v.name : ' (anonymous)') + ']';
    if (typeof v === 'bigint') return v + 'n';
    if (typeof v !== 'object' || v === null) return String(v);
    if (v instanceof Error) return v.stack ? v.name + ': ' + v.message + '\\n' + v.stack : String(v);
    try { const s = JSON.stringify(v); return s === undefined ? String(v) : s; } catch (e) { return String(v); }
  };
  const line = (args) => {
    let out = '';
    for (let i = 0; i < args.length; i++) {
      out += (i === 0 ? '' : ' ') + str(args[i]);
      if (out.length > cap) break;
    }
    return (out.length > cap ? out.slice(0, cap) : out) + '\\n';
  };
  const out = (...args) => { write(1, line(args)); };
  const err = (...args) => { write(2, line(args)); };
  globalThis.console = { log: out, info: out, debug: out, warn: err, error: err, trace: err };
  return (v) => {
    try { const s = JSON.stringify(v); return s === undefined ? null : s; } catch (e) { return null; }
  };
})`;

/**
 * Runs JavaScript in QuickJS compiled to WebAssembly. Every run gets a fresh instance of the
 * module with its own `WebAssembly.Memory` whose maximum is the run's memory limit: QuickJS's
 * own `setMemoryLimit` does not count ArrayBuffer storage (a typed-array loop grew the process
 * to 2 GB under a 32 MiB limit in our test), so the memory's maximum is what really holds.
 * Instances are prepared ahead of time and never reused, so nothing one program does (or
 * corrupts) is visible to the next.
 */
export class QuickJsEngine {
  readonly #module: WebAssembly.Module;
  readonly #loader: EmscriptenModuleLoader<QuickJSEmscriptenModule>;
  readonly #ffi: new (
    module: QuickJSEmscriptenModule,
  ) => QuickJSFFI;
  readonly #lineCap: number;
  #prepared: Prepared | undefined;
  #preparing: { memoryBytes: number; done: Promise<Prepared> } | undefined;

  private constructor(
    module: WebAssembly.Module,
    loader: EmscriptenModuleLoader<QuickJSEmscriptenModule>,
    ffi: new (module: QuickJSEmscriptenModule) => QuickJSFFI,
    lineCap: number,
  ) {
    this.#module = module;
    this.#loader = loader;
    this.#ffi = ffi;
    this.#lineCap = lineCap;
  }

  /** Compiles the QuickJS module once; instances are made from it per run. */
  static async create(maxOutputBytes: number): Promise<QuickJsEngine> {
    const require = createRequire(import.meta.url);
    const bytes = readFileSync(require.resolve('@jitl/quickjs-wasmfile-release-sync/wasm'));
    const [module, imported, ffi] = await Promise.all([
      WebAssembly.compile(bytes),
      releaseSync.importModuleLoader(),
      releaseSync.importFFI(),
    ]);
    const loader = (
      typeof imported === 'function' ? imported : imported.default
    ) as EmscriptenModuleLoader<QuickJSEmscriptenModule>;
    return new QuickJsEngine(module, loader, ffi, maxOutputBytes);
  }

  /** Makes the next run's instance now, so the run does not wait for it. */
  prepare(memoryBytes: number): Promise<void> {
    if (this.#prepared?.memoryBytes === memoryBytes) return Promise.resolve();
    if (this.#preparing?.memoryBytes !== memoryBytes) {
      const preparing = { memoryBytes, done: this.#instantiate(memoryBytes) };
      this.#preparing = preparing;
      preparing.done.then(
        (prepared) => {
          if (this.#preparing === preparing) {
            this.#preparing = undefined;
            this.#prepared = prepared;
          }
        },
        () => {
          if (this.#preparing === preparing) this.#preparing = undefined;
        },
      );
    }
    return this.#preparing!.done.then(() => {});
  }

  /** Runs one program in a fresh instance and describes what happened. */
  async run(spec: JsRunSpec): Promise<SandboxResult> {
    const started = performance.now();
    let prepared = this.#prepared;
    this.#prepared = undefined;
    if (prepared === undefined || prepared.memoryBytes !== spec.memoryBytes) {
      // The instance being made between runs, if it fits; else one of this run's size.
      const preparing = this.#preparing;
      this.#preparing = undefined;
      prepared =
        preparing?.memoryBytes === spec.memoryBytes
          ? await preparing.done
          : await this.#instantiate(spec.memoryBytes);
    }
    const result = execute(prepared, spec, performance.now());
    result.duration_ms = Math.round((performance.now() - started) * 1000) / 1000;
    return result;
  }

  /**
   * A new instance from the compiled module. This drives the variant's Emscripten loader
   * directly (what `newQuickJSWASMModuleFromVariant` does, minus its per-call dynamic imports
   * and option handling), which halves the cost; the versions are pinned for that reason.
   */
  async #instantiate(memoryBytes: number): Promise<Prepared> {
    const memory = new WebAssembly.Memory({
      initial: QUICKJS_MIN_MEMORY_BYTES / PAGE,
      maximum: Math.max(QUICKJS_MIN_MEMORY_BYTES, memoryBytes) / PAGE,
    });
    const compiled = this.#module;
    const emscripten = await this.#loader({
      wasmMemory: memory,
      instantiateWasm: (imports, onSuccess) => {
        const instance = new WebAssembly.Instance(compiled, imports);
        onSuccess(instance);
        return instance.exports;
      },
    });
    emscripten.type = 'sync';
    const module = new QuickJSWASMModule(emscripten, new this.#ffi(emscripten));
    return new Prepared(module, memory, memoryBytes, this.#lineCap);
  }
}

/** Output collected from the program's console, capped per stream. */
class ConsoleSink {
  cap = 0;
  out: string[] = [];
  err: string[] = [];
  #outBytes = 0;
  #errBytes = 0;
  overflow = false;

  write(stream: number, text: string): void {
    if (this.overflow) return;
    const bytes = Buffer.byteLength(text);
    const used = stream === 2 ? this.#errBytes : this.#outBytes;
    let piece = text;
    if (used + bytes > this.cap) {
      piece = Buffer.from(text)
        .subarray(0, this.cap - used)
        .toString('utf8');
      this.overflow = true;
    }
    if (stream === 2) {
      this.err.push(piece);
      this.#errBytes += bytes;
    } else {
      this.out.push(piece);
      this.#outBytes += bytes;
    }
  }

  /** Agentd's own note on stderr: cut to fit, never counted as the program overflowing. */
  note(text: string): void {
    const room = this.cap - this.#errBytes;
    if (room <= 0) return;
    const piece = text.length > room ? text.slice(0, room) : text;
    this.err.push(piece);
    this.#errBytes += Buffer.byteLength(piece);
  }
}

function execute(prepared: Prepared, spec: JsRunSpec, started: number): SandboxResult {
  const result = emptyResult('javascript');
  const { runtime, context, sink } = prepared;
  // setMemoryLimit still gives ordinary objects a clean "out of memory" a little before the
  // memory's hard maximum; the maximum is what stops everything else.
  runtime.setMemoryLimit(Math.max(8 * 1024 * 1024, spec.memoryBytes - 4 * 1024 * 1024));
  runtime.setMaxStackSize(spec.maxStackBytes);
  sink.cap = spec.maxOutputBytes;
  prepared.deadline = started + spec.timeoutMs;
  try {
    const evaluated = context.evalCode(spec.code, 'main.js');
    if (evaluated.error !== undefined) {
      describeError(context, evaluated.error, result, sink);
    } else {
      let value: QuickJSHandle | undefined = evaluated.value;
      const state = context.getPromiseState(value);
      if (state.type !== 'fulfilled' || state.notAPromise !== true)
        value = settle(context, value, result, sink);
      if (value !== undefined) {
        result.exit = 0;
        result.result = encodeResult(context, prepared.encode, value, spec.maxResultChars, sink);
      }
    }
  } catch (err) {
    // The host side threw: a trap in the interpreter (e.g. the native stack ran out in a
    // recursion QuickJS does not guard). The instance is discarded either way.
    result.crashed = true;
    result.exit = null;
    result.error = `the interpreter crashed: ${(err as Error).message}`;
  }
  if (sink.overflow) {
    result.output_truncated = true;
    result.exit = null;
    result.error = `output passed ${spec.maxOutputBytes} bytes; the program was stopped`;
  } else if (prepared.timedOut) {
    result.timed_out = true;
    result.exit = null;
    result.error = `timed out after ${spec.timeoutMs} ms`;
  } else if (result.exit !== 0 && prepared.memory.buffer.byteLength >= spec.memoryBytes - PAGE * 16) {
    // Grown to its maximum: whatever failed, it failed for want of memory.
    result.memory_exceeded = true;
  }
  if (result.memory_exceeded && !result.crashed) result.error = 'memory limit exceeded';
  result.stdout = sink.out.join('');
  result.stderr = sink.err.join('');
  return result;
}

function installPrelude(context: QuickJSContext, sink: ConsoleSink, lineCap: number): QuickJSHandle {
  const prelude = context.unwrapResult(context.evalCode(PRELUDE, 'prelude.js'));
  const write = context.newFunction('write', (stream, text) => {
    sink.write(context.getNumber(stream), context.getString(text));
  });
  return context.unwrapResult(
    context.callFunction(prelude, context.undefined, write, context.newNumber(lineCap)),
  );
}

/** Runs the microtask queue until the program's promise settles (there are no timers to wait for). */
function settle(
  context: QuickJSContext,
  promise: QuickJSHandle,
  result: SandboxResult,
  sink: ConsoleSink,
): QuickJSHandle | undefined {
  for (;;) {
    const state = context.getPromiseState(promise);
    if (state.type === 'fulfilled') return state.value;
    if (state.type === 'rejected') {
      describeError(context, state.error, result, sink);
      return undefined;
    }
    const ran = context.runtime.executePendingJobs();
    if (ran.error !== undefined) {
      describeError(context, ran.error, result, sink);
      return undefined;
    }
    if (ran.value === 0) {
      result.exit = 1;
      result.error = 'the program returned a promise that never settles (there are no timers or I/O)';
      return undefined;
    }
  }
}

function encodeResult(
  context: QuickJSContext,
  encode: QuickJSHandle,
  value: QuickJSHandle,
  maxChars: number,
  sink: ConsoleSink,
): unknown {
  if (context.typeof(value) === 'undefined') return null;
  const encoded = context.callFunction(encode, context.undefined, value);
  if (encoded.error !== undefined || context.typeof(encoded.value) !== 'string') return null;
  const length = context.getNumber(context.getProp(encoded.value, 'length'));
  if (length > maxChars) {
    sink.note(`[agentd: the result (${length} characters of JSON) is over ${maxChars} and was dropped]\n`);
    return null;
  }
  return JSON.parse(context.getString(encoded.value));
}

/** Records an uncaught exception: a one-line `error`, and the trace on stderr. */
function describeError(
  context: QuickJSContext,
  error: QuickJSHandle,
  result: SandboxResult,
  sink: ConsoleSink,
): void {
  result.exit = 1;
  let name = 'Error';
  let message = 'uncaught exception';
  let stack = '';
  try {
    const dumped = context.dump(error) as unknown;
    if (typeof dumped === 'object' && dumped !== null) {
      const fields = dumped as { name?: unknown; message?: unknown; stack?: unknown };
      if (typeof fields.name === 'string') name = fields.name;
      if (typeof fields.message === 'string') message = fields.message;
      if (typeof fields.stack === 'string') stack = fields.stack;
    } else {
      name = 'Uncaught';
      message = String(dumped);
    }
  } catch {
    // A thrown value that cannot even be described (its getters throw or loop).
  }
  if (name === 'InternalError' && message === 'out of memory') result.memory_exceeded = true;
  if (name === 'InternalError' && message === 'interrupted') return; // the caller says why
  result.error = `${name}: ${message}`.slice(0, 500);
  const trace = stack === '' ? `${name}: ${message}\n` : `${name}: ${message}\n${stack}`;
  sink.note(trace.length > MAX_TRACE_CHARS ? `${trace.slice(0, MAX_TRACE_CHARS)}\n    …\n` : trace);
}
