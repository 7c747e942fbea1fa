import { Worker } from 'node:worker_threads';
import { type AgentdError, SandboxUnavailableError, ShuttingDownError, toAgentdError } from '../../errors.js';
import { coarseTimer, type TimerEntry } from '../../lib/coarse-timer.js';
import { entryPoint } from '../entry.js';
import { emptyResult, type RunRequest, type SandboxResult } from '../types.js';
import { Waiters } from '../waiters.js';
import type { JsRunSpec } from './quickjs.js';
import type { JsRunMessage, JsWorkerData } from './worker.js';

export interface JsPoolOptions {
  /** Worker threads kept warm; each runs one program at a time. */
  workers: number;
  /** Runs that may wait for a free worker; one more is refused. */
  maxQueue: number;
  /** The memory limit the prepared instances are made with (other limits cost ~1 ms more). */
  memoryBytes: number;
  /** The largest output cap any run may have. */
  maxOutputBytes: number;
  maxStackBytes: number;
  maxResultChars: number;
  /** How long past its deadline a run may take before its worker is terminated. */
  killGraceMs: number;
  /** Told about faults that are not a program's own (a worker that died, a warning). */
  onFault?: (message: string) => void;
}

/** What the pool reports about itself. */
export interface PoolStats {
  size: number;
  busy: number;
  /** Idle and with the next run's instance or interpreter made: a run now is a warm run. */
  ready: number;
  queued: number;
  /** Interpreters replaced after a crash or a kill, since start. */
  replaced: number;
}

interface Job {
  id: number;
  resolve(result: SandboxResult): void;
  timer: TimerEntry | undefined;
  timeoutMs: number;
  started: number;
}

const ENTRY = entryPoint(import.meta.url, 'worker');
const BROKEN_RETRY_MS = 10_000;

/** One worker thread and the run it is doing. */
class JsWorkerSlot {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  job: Job | undefined;
  started = false;
  /** The worker has the next run's instance made. */
  prepared = false;
  dead = false;

  constructor(pool: JsPool, data: JsWorkerData) {
    this.worker = new Worker(ENTRY.worker.script, {
      eval: ENTRY.worker.eval,
      workerData: data,
      env: {},
      stdout: true,
      stderr: true,
      // The program's memory is WebAssembly memory, outside these limits; they bound the
      // worker's own JavaScript (console text on its way out, the result's JSON).
      resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
    });
    this.ready = new Promise<void>((resolve, reject) => {
      const onMessage = (message: { ready?: boolean }) => {
        if (message.ready !== true) return;
        this.worker.off('message', onMessage);
        resolve();
      };
      this.worker.on('message', onMessage);
      this.worker.once('exit', () =>
        reject(new Error('the JavaScript sandbox worker exited while starting')),
      );
    });
    this.ready.catch(() => {});
    this.worker.on(
      'message',
      (message: { id?: number; result?: SandboxResult; error?: string; warning?: string }) =>
        pool.onMessage(this, message),
    );
    this.worker.on('error', (err) => pool.onWorkerGone(this, `the worker failed: ${err.message}`));
    this.worker.on('exit', (code) => pool.onWorkerGone(this, `the worker exited (${code})`));
  }
}

/**
 * A pool of worker threads running QuickJS. The program's deadline is enforced inside the
 * worker by QuickJS's interrupt handler; if a run is still going `killGraceMs` later (a builtin
 * that never reaches an interrupt check), the worker is terminated and replaced.
 */
export class JsPool {
  readonly #options: JsPoolOptions;
  readonly #slots: JsWorkerSlot[] = [];
  readonly #idle: JsWorkerSlot[] = [];
  readonly #waiters: Waiters<JsWorkerSlot>;
  #nextId = 1;
  #replaced = 0;
  #closed = false;
  #broken: AgentdError | undefined;
  #brokenUntil = 0;

  constructor(options: JsPoolOptions) {
    this.#options = options;
    this.#waiters = new Waiters(options.maxQueue, 'JavaScript sandbox workers');
  }

  /** Starts the workers (once); resolves when all are ready. */
  async warm(): Promise<void> {
    while (this.#slots.length < this.#options.workers) this.#spawn();
    await Promise.all(this.#slots.map((slot) => slot.ready));
  }

  /** Runs a program; resolves with its result (a failing program is a result, not an error). */
  async run(request: RunRequest, signal?: AbortSignal): Promise<SandboxResult> {
    if (this.#closed) throw new ShuttingDownError('the sandbox is closing');
    if (this.#broken !== undefined) {
      if (performance.now() < this.#brokenUntil) throw this.#broken;
      this.#broken = undefined;
    }
    if (this.#slots.length === 0) void this.warm().catch(() => {});
    const slot = this.#idle.pop() ?? (await this.#waiters.wait(signal));
    try {
      await slot.ready;
    } catch (err) {
      throw toAgentdError(err);
    }
    const spec: JsRunSpec = {
      code: request.code,
      timeoutMs: request.limits.timeoutMs,
      memoryBytes: request.limits.memoryBytes,
      maxOutputBytes: request.limits.maxOutputBytes,
      maxStackBytes: this.#options.maxStackBytes,
      maxResultChars: this.#options.maxResultChars,
    };
    return new Promise<SandboxResult>((resolve) => {
      const job: Job = {
        id: this.#nextId++,
        resolve,
        timer: undefined,
        timeoutMs: spec.timeoutMs,
        started: 0,
      };
      job.started = performance.now();
      job.timer = coarseTimer.schedule(spec.timeoutMs + this.#options.killGraceMs, killOverdue, {
        pool: this,
        slot,
      });
      slot.job = job;
      slot.prepared = false;
      const message: JsRunMessage = { id: job.id, spec };
      slot.worker.postMessage(message);
      // A cancelled task cannot wait for the deadline: stop the worker now (the signal may have
      // fired while this run waited for its worker).
      if (signal?.aborted) this.kill(slot, 'cancelled');
      else
        signal?.addEventListener('abort', () => slot.job === job && this.kill(slot, 'cancelled'), {
          once: true,
        });
    });
  }

  stats(): PoolStats {
    return {
      size: this.#slots.length,
      busy: this.#slots.length - this.#idle.length,
      ready: this.#idle.filter((slot) => slot.prepared).length,
      queued: this.#waiters.length,
      replaced: this.#replaced,
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#waiters.rejectAll(new ShuttingDownError('the sandbox is closing'));
    const slots = this.#slots.splice(0);
    this.#idle.length = 0;
    await Promise.all(
      slots.map((slot) => {
        slot.dead = true;
        const job = slot.job;
        if (job !== undefined) {
          const result = emptyResult('javascript');
          result.error = 'cancelled: the sandbox is closing';
          this.#finish(slot, job, result);
        }
        return slot.worker.terminate();
      }),
    );
  }

  /** @internal A worker answered. */
  onMessage(
    slot: JsWorkerSlot,
    message: { id?: number; result?: SandboxResult; error?: string; warning?: string; prepared?: boolean },
  ): void {
    if (message.prepared === true) slot.prepared = true;
    if (message.warning !== undefined) this.#options.onFault?.(message.warning);
    const job = slot.job;
    if (job === undefined || message.id !== job.id) return;
    let result = message.result;
    if (result === undefined) {
      result = emptyResult('javascript');
      result.crashed = true;
      result.error = `the sandbox failed: ${message.error ?? 'no result'}`;
    }
    this.#finish(slot, job, result);
    this.#release(slot);
  }

  /** @internal A worker died: its run (if any) crashed, and a new worker takes its place. */
  onWorkerGone(slot: JsWorkerSlot, why: string): void {
    if (slot.dead) return;
    slot.dead = true;
    const job = slot.job;
    if (job !== undefined) {
      const result = emptyResult('javascript');
      result.crashed = true;
      result.error = `the interpreter crashed: ${why}`;
      this.#finish(slot, job, result);
    } else {
      this.#options.onFault?.(`JavaScript sandbox worker lost: ${why}`);
    }
    this.#replace(slot);
  }

  /** @internal Terminates a worker whose run overran its deadline (or was cancelled). */
  kill(slot: JsWorkerSlot, why: 'overdue' | 'cancelled'): void {
    if (slot.dead) return;
    slot.dead = true;
    const job = slot.job;
    if (job !== undefined) {
      const result = emptyResult('javascript');
      if (why === 'overdue') {
        result.timed_out = true;
        result.crashed = true;
        result.error = `timed out after ${job.timeoutMs} ms; the program did not yield, so its worker was terminated`;
      } else {
        result.error = 'cancelled';
      }
      this.#finish(slot, job, result);
    }
    void slot.worker.terminate();
    this.#replace(slot);
  }

  #finish(slot: JsWorkerSlot, job: Job, result: SandboxResult): void {
    coarseTimer.cancel(job.timer);
    slot.job = undefined;
    if (result.duration_ms === 0)
      result.duration_ms = Math.round((performance.now() - job.started) * 1000) / 1000;
    job.resolve(result);
  }

  #release(slot: JsWorkerSlot): void {
    if (this.#closed || slot.dead) return;
    if (!this.#waiters.handOver(slot)) this.#idle.push(slot);
  }

  #replace(slot: JsWorkerSlot): void {
    const index = this.#slots.indexOf(slot);
    if (index !== -1) this.#slots.splice(index, 1);
    const idle = this.#idle.indexOf(slot);
    if (idle !== -1) this.#idle.splice(idle, 1);
    if (this.#closed) return;
    this.#replaced++;
    if (!slot.started) {
      // A worker that cannot even start will not start next time either: stop trying for a
      // while and fail the waiting runs, rather than spinning on respawns.
      this.#broken = new SandboxUnavailableError('the JavaScript sandbox cannot start its workers', {
        retryAfterMs: BROKEN_RETRY_MS,
      });
      this.#brokenUntil = performance.now() + BROKEN_RETRY_MS;
      this.#waiters.rejectAll(this.#broken);
      this.#options.onFault?.(this.#broken.message);
      return;
    }
    this.#spawn();
  }

  #spawn(): JsWorkerSlot {
    const slot = new JsWorkerSlot(this, {
      memoryBytes: this.#options.memoryBytes,
      maxOutputBytes: this.#options.maxOutputBytes,
    });
    this.#slots.push(slot);
    slot.ready.then(
      () => {
        slot.started = true;
        this.#release(slot);
      },
      () => {},
    );
    return slot;
  }
}

function killOverdue(state: { pool: JsPool; slot: JsWorkerSlot }): void {
  state.pool.kill(state.slot, 'overdue');
}
