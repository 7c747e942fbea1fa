import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { coarseTimer, type TimerEntry } from '../../lib/coarse-timer.js';
import { emptyResult, type RunRequest, type SandboxResult } from '../types.js';
import type { DoneMessage, PrepareMessage } from './host.js';
import type { Launch } from './isolation.js';
import {
  collectFiles,
  type FileLimits,
  pristine,
  removeRunDir,
  type ScratchRoot,
  takeResultFile,
  writeInputs,
} from './scratch.js';
import { RunStream } from './stream.js';

/** Everything one interpreter process needs from its pool. */
export interface PythonProcessOptions {
  id: number;
  launch: Launch;
  scratch: ScratchRoot;
  processDir: string;
  writeBudget: number;
  files: FileLimits;
  maxResultChars: number;
  /** Runs after which the process is retired and replaced (bounds anything that accumulates). */
  maxRuns: number;
  /** Called when the process is ready for a run (again), or has died. */
  onState(process: PythonProcess): void;
}

type State = 'starting' | 'ready' | 'running' | 'dead';
type StopReason = 'timeout' | 'output' | 'cancelled' | 'refused' | 'retired';

/** One prepare → run → done cycle: a fresh interpreter, a fresh scratch directory. */
interface Cycle {
  dir: string;
  memoryBytes: number;
  readyToken: string;
  endToken: string;
  readyText: string;
  stdout: RunStream | undefined;
  stderr: RunStream | undefined;
  done: DoneMessage | undefined;
  request: RunRequest | undefined;
  resolve: ((result: SandboxResult) => void) | undefined;
  started: number;
  timer: TimerEntry | undefined;
  stop: StopReason | undefined;
}

/**
 * One child process hosting CPython (see host.ts), as its pool sees it. The interpreter for
 * the next run is started ahead of time and waits for its program; a run writes the program to
 * the child's stdin, collects its output up to the end tokens, and the child then prepares the
 * next interpreter in a new scratch directory. A run that overruns its deadline or its output cap
 * is stopped by killing the process (the pool starts another).
 */
export class PythonProcess {
  readonly id: number;
  readonly #options: PythonProcessOptions;
  readonly #child: ChildProcess;
  #state: State = 'starting';
  #cycle: Cycle | undefined;
  /** Runs served; the pool retires a process after a number of them. */
  runs = 0;
  /** Set once the first interpreter reported ready: a process that never does is broken. */
  everReady = false;
  exitReason = '';
  /** The memory limit the next interpreter gets (changed by `reprepare`). */
  #nextMemory: number;

  constructor(options: PythonProcessOptions, memoryBytes: number) {
    this.id = options.id;
    this.#options = options;
    this.#child = spawn(options.launch.file, options.launch.args, {
      cwd: options.launch.cwd,
      env: {},
      stdio: ['pipe', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    this.#child.stdout!.on('data', (chunk: Buffer) => this.#onOutput(1, chunk));
    this.#child.stderr!.on('data', (chunk: Buffer) => this.#onOutput(2, chunk));
    this.#child.stdin!.on('error', () => {}); // a dead child's pipe; the exit handler reports it
    this.#child.on('message', (message: DoneMessage) => this.#onMessage(message));
    this.#child.on('error', (err) => this.#onExit(`could not start: ${err.message}`));
    this.#child.on('exit', (code, signal) =>
      this.#onExit(signal === null ? `exited with code ${code}` : `killed by ${signal}`),
    );
    this.#nextMemory = memoryBytes;
    this.#prepare();
  }

  get state(): State {
    return this.#state;
  }

  /** The memory limit of the interpreter waiting for a run. */
  get memoryBytes(): number {
    return this.#cycle?.memoryBytes ?? 0;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Runs a program in the waiting interpreter. Only valid in state `ready`. */
  run(
    request: RunRequest,
    contents: readonly Buffer[],
    signal: AbortSignal | undefined,
  ): Promise<SandboxResult> {
    const cycle = this.#cycle!;
    this.#state = 'running';
    this.runs++;
    return new Promise<SandboxResult>((resolve) => {
      cycle.resolve = resolve;
      cycle.request = request;
      cycle.started = performance.now();
      const refusal = pristine(cycle.dir);
      if (refusal !== undefined) {
        // Something on the host wrote into the directory this interpreter can see: do not run
        // anything there, and do not trust this process any longer.
        cycle.stop = 'refused';
        cycle.readyText = refusal;
        this.#kill();
        return;
      }
      if (request.files !== undefined) {
        try {
          writeInputs(cycle.dir, request.files, contents);
        } catch (err) {
          cycle.stop = 'refused';
          cycle.readyText = `the input files could not be written: ${(err as Error).message}`;
          this.#kill();
          return;
        }
      }
      cycle.stdout = new RunStream(request.limits.maxOutputBytes, cycle.endToken);
      cycle.stderr = new RunStream(request.limits.maxOutputBytes, cycle.endToken);
      const source = Buffer.from(request.code, 'utf8');
      this.#child.stdin!.write(`${source.length} ${this.#options.maxResultChars}\n`);
      this.#child.stdin!.write(source);
      cycle.timer = coarseTimer.schedule(request.limits.timeoutMs, stopOnTimeout, this);
      // The signal may have fired while this run waited for the process.
      if (signal?.aborted) this.stop('cancelled');
      else
        signal?.addEventListener('abort', () => cycle === this.#cycle && this.stop('cancelled'), {
          once: true,
        });
    });
  }

  /**
   * Replaces the waiting interpreter with one of another memory limit: the waiting one is told
   * to exit (an empty program), and the process prepares the next. Only valid in state `ready`.
   */
  reprepare(memoryBytes: number): void {
    const cycle = this.#cycle!;
    this.#nextMemory = memoryBytes;
    this.#state = 'running';
    cycle.stdout = new RunStream(4096, cycle.endToken);
    cycle.stderr = new RunStream(4096, cycle.endToken);
    this.#child.stdin!.write('0 0\n');
  }

  /** Stops the current run (killing the process) for `reason`. */
  stop(reason: StopReason): void {
    const cycle = this.#cycle;
    if (cycle === undefined || this.#state === 'dead') return;
    cycle.stop ??= reason;
    this.#kill();
  }

  /** Ends the process (idle or not). */
  retire(): void {
    if (this.#state === 'dead') return;
    if (this.#cycle !== undefined) this.#cycle.stop ??= 'retired';
    this.#kill();
  }

  #prepare(): void {
    const memoryBytes = this.#nextMemory;
    const dir = this.#options.scratch.runDir(this.#options.processDir);
    const cycle: Cycle = {
      dir,
      memoryBytes,
      readyToken: randomBytes(16).toString('hex'),
      endToken: randomBytes(16).toString('hex'),
      readyText: '',
      stdout: undefined,
      stderr: undefined,
      done: undefined,
      request: undefined,
      resolve: undefined,
      started: 0,
      timer: undefined,
      stop: undefined,
    };
    this.#cycle = cycle;
    this.#state = 'starting';
    const message: PrepareMessage = {
      type: 'prepare',
      dir,
      memoryBytes,
      writeBudget: this.#options.writeBudget,
      readyToken: cycle.readyToken,
      endToken: cycle.endToken,
    };
    this.#child.send(message);
  }

  #onOutput(fd: 1 | 2, chunk: Buffer): void {
    const cycle = this.#cycle;
    if (cycle === undefined) return;
    if (this.#state === 'starting') {
      if (fd !== 2) return;
      // The bootstrap's first words: the ready token. Nothing of a program can come before it.
      cycle.readyText += chunk.toString('latin1');
      if (cycle.readyText.includes(`${cycle.readyToken}\n`)) {
        this.#state = 'ready';
        this.everReady = true;
        this.#options.onState(this);
      } else if (cycle.readyText.length > 4096) {
        this.#kill();
      }
      return;
    }
    if (this.#state !== 'running' || cycle.stdout === undefined) return;
    const outcome = (fd === 1 ? cycle.stdout : cycle.stderr!).push(chunk);
    if (outcome === 'overflow') this.stop('output');
    else if (outcome === 'end') this.#maybeFinish(cycle);
  }

  #onMessage(message: DoneMessage): void {
    if (message.type !== 'done') return;
    const cycle = this.#cycle;
    if (cycle === undefined || this.#state !== 'running') return;
    cycle.done = message;
    this.#maybeFinish(cycle);
  }

  #maybeFinish(cycle: Cycle): void {
    if (cycle.done === undefined || !cycle.stdout!.ended || !cycle.stderr!.ended) return;
    this.#finish(cycle, undefined);
    if (this.#state === 'dead') return;
    if (this.runs >= this.#options.maxRuns) {
      this.#cycle = undefined;
      this.#kill();
      return;
    }
    this.#prepare();
  }

  #onExit(why: string): void {
    if (this.#state === 'dead') return;
    const running = this.#state === 'running';
    this.#state = 'dead';
    this.exitReason = why;
    const cycle = this.#cycle;
    if (cycle !== undefined) {
      if (running || cycle.stop === 'refused') this.#finish(cycle, why);
      else removeRunDir(cycle.dir);
    }
    this.#options.onState(this);
  }

  #kill(): void {
    this.#child.kill('SIGKILL');
  }

  /** Builds the run's result from what the interpreter left, and clears its directory. */
  #finish(cycle: Cycle, died: string | undefined): void {
    coarseTimer.cancel(cycle.timer);
    const resolve = cycle.resolve;
    cycle.resolve = undefined;
    if (resolve === undefined) {
      removeRunDir(cycle.dir); // an interpreter replaced before it ran anything
      return;
    }
    const request = cycle.request!;
    const result = emptyResult('python');
    result.duration_ms = Math.round((performance.now() - cycle.started) * 1000) / 1000;
    try {
      if (cycle.stop === 'refused') {
        result.error = `refused to run: ${cycle.readyText}`;
        return;
      }
      const out = cycle.stdout?.text();
      const err = cycle.stderr?.text();
      result.stdout = out?.text ?? '';
      result.stderr = err?.text ?? '';
      const done = cycle.done;
      if (died === undefined && done !== undefined) {
        result.exit = done.exit;
        if (done.trap !== null) {
          result.crashed = true;
          result.exit = null;
          result.error = `the interpreter crashed: ${done.trap}`;
          if (done.memoryBytes >= cycle.memoryBytes - 1024 * 1024) result.memory_exceeded = true;
        }
        if (done.quotaExceeded)
          result.stderr += `\n[agentd: writes to files passed the ${this.#options.writeBudget}-byte quota and failed]\n`;
        this.#readOutcome(cycle.dir, result);
      } else {
        this.#describeStop(cycle, request, result, died ?? 'the process ended');
      }
      if (request.returnFiles === true && died === undefined)
        result.files = collectFiles(cycle.dir, this.#options.files);
    } finally {
      removeRunDir(cycle.dir);
      resolve(result);
    }
  }

  #readOutcome(dir: string, result: SandboxResult): void {
    const text = takeResultFile(dir, this.#options.maxResultChars + 4096);
    if (text === undefined) return;
    try {
      const outcome = JSON.parse(text) as {
        result: string | null;
        memory_error: boolean;
        note: string | null;
        error: string | null;
      };
      if (typeof outcome.result === 'string') result.result = JSON.parse(outcome.result);
      if (typeof outcome.error === 'string') result.error = outcome.error;
      if (outcome.memory_error === true) {
        result.memory_exceeded = true;
        result.error = 'memory limit exceeded';
      }
      if (typeof outcome.note === 'string') result.stderr += `[agentd: ${outcome.note}]\n`;
    } catch {
      // The program overwrote the file with something else: it gets no result.
    }
  }

  #describeStop(cycle: Cycle, request: RunRequest, result: SandboxResult, died: string): void {
    switch (cycle.stop) {
      case 'timeout':
        result.timed_out = true;
        result.error = `timed out after ${request.limits.timeoutMs} ms`;
        return;
      case 'output':
        result.output_truncated = true;
        result.error = `output passed ${request.limits.maxOutputBytes} bytes; the program was stopped`;
        return;
      case 'cancelled':
      case 'retired':
        result.error = 'cancelled';
        return;
      default:
        result.crashed = true;
        result.error = `the Python interpreter crashed (${died})`;
    }
  }
}

function stopOnTimeout(process: PythonProcess): void {
  process.stop('timeout');
}
