import { once } from 'node:events';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * The worker: its own connection to the database, a passive checkpoint per request (it never
 * blocks the writer), an answer when done, and a clean close (so the writer's own close can
 * checkpoint the rest and remove the WAL).
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const running = new Int32Array(workerData.running);
const db = new Database(workerData.path);
db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
db.pragma('synchronous = NORMAL');
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy or locked: the next request tries again, and the writer's own backstop remains.
  }
  Atomics.store(running, 0, 0);
  Atomics.notify(running, 0);
});
`;

/** Memories written between two checkpoint requests. */
const REQUEST_EVERY = 256;
/**
 * WAL pages past which the writer's connection checkpoints by itself (SQLite's default is 1,000):
 * a backstop for when the worker lags, far enough that it does not take the worker's work.
 */
export const WRITER_AUTOCHECKPOINT = 10_000;

/**
 * Checkpoints a SQLite database's WAL from a worker thread with its own connection, so that the
 * writing thread does not copy WAL pages into the database itself: with SQLite's automatic
 * checkpoint the committing thread did, about 9 µs per added memory (a 384-d vector is 1.5 KB,
 * written twice). The worker starts at the first request, once enough memories are written: a
 * small store never starts one.
 */
export class WalCheckpointer {
  readonly #path: string;
  readonly #busyTimeoutMs: number;
  #worker: Worker | undefined;
  #written = 0;
  /** 1 while the worker checkpoints (shared: the worker clears it). */
  readonly #running = new Int32Array(new SharedArrayBuffer(4));
  #closed = false;

  constructor(path: string, busyTimeoutMs: number) {
    this.#path = path;
    this.#busyTimeoutMs = busyTimeoutMs;
  }

  /** Counts memories written (after their commit); past a threshold, asks for a checkpoint. */
  written(count: number): void {
    this.#written += count;
    if (this.#written < REQUEST_EVERY || this.#closed || Atomics.load(this.#running, 0) === 1) return;
    this.#written = 0;
    Atomics.store(this.#running, 0, 1);
    this.#start().postMessage('checkpoint');
  }

  /**
   * Before a write transaction: waits (blocking, without spending CPU) for a running checkpoint.
   * SQLite restarts the WAL from its start only when a write begins after a complete checkpoint;
   * a write racing each checkpoint would grow the WAL up to the writer's backstop.
   */
  settle(): void {
    if (Atomics.load(this.#running, 0) === 1) Atomics.wait(this.#running, 0, 1, this.#busyTimeoutMs);
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(WORKER, {
      eval: true,
      workerData: {
        path: this.#path,
        busyTimeoutMs: this.#busyTimeoutMs,
        running: this.#running.buffer,
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
      },
    });
    // A checkpoint that cannot run is not an error of the writes: the writer's backstop remains.
    worker.on('error', () => {
      this.#worker = undefined;
      Atomics.store(this.#running, 0, 0);
    });
    worker.unref();
    this.#worker = worker;
    return worker;
  }

  /** Stops the worker after closing its connection (call before closing the writer's). */
  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#worker;
    if (worker === undefined) return;
    this.#worker = undefined;
    // Held while closing: the worker is unreferenced so that it never keeps a process alive.
    worker.ref();
    const exited = once(worker, 'exit');
    worker.postMessage('close');
    await exited;
  }
}
