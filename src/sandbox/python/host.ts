/**
 * The child process that hosts CPython (WASI) for the Python sandbox. It compiles the module
 * once, then for each run the parent sends `prepare`: a new instance with a new memory (the
 * run's limit as its maximum) and a new WASI whose only preopened directory is the run's scratch
 * directory. The interpreter starts at once and blocks reading the program from this process's
 * stdin; its stdout and stderr are this process's own, so output streams to the parent. When it
 * exits, this process writes the run's end token on both streams and reports `done`.
 *
 * A crash of the interpreter can kill this process; the parent then reports a crashed run and
 * starts another. Nothing here trusts the program: it only ever talks to the WASI functions
 * below, several of which are replaced with refusals.
 */
import { readFileSync, writeSync } from 'node:fs';
import { WASI } from 'node:wasi';
import { BOOTSTRAP, GUEST_DIR } from './bootstrap.js';
import { importMemory } from './wasm.js';

/** Parent → child: make the next run's interpreter. */
export interface PrepareMessage {
  type: 'prepare';
  /** The run's scratch directory on the host. */
  dir: string;
  memoryBytes: number;
  /** Bytes the program may write to files in total (a quota: WASI has none). */
  writeBudget: number;
  /** Printed by the bootstrap on stderr once the interpreter waits for its program. */
  readyToken: string;
  /** Written by this process on stdout and stderr after the interpreter exits. */
  endToken: string;
}

/** Child → parent: the interpreter exited (or trapped). */
export interface DoneMessage {
  type: 'done';
  exit: number | null;
  /** A trap or host error that ended the interpreter abnormally. */
  trap: string | null;
  memoryBytes: number;
  quotaExceeded: boolean;
}

// WASI errno values (preview 1).
const ENOSPC = 51;
const ENOTSUP = 58;
const EPERM = 63;
const PAGE = 65_536;

const wasmPath = process.argv[2];
if (wasmPath === undefined) throw new Error('usage: host <python.wasm>');
// Only the compiled module and the memory's minimum are kept: the 26 MB file and the 13 MB
// rewritten bytes are garbage once compiled.
const { module, minPages } = await compile(wasmPath);
const pending: PrepareMessage[] = [];
let running = false;

process.on('message', (message: PrepareMessage) => {
  if (message.type !== 'prepare') return;
  pending.push(message);
  if (!running) setImmediate(drain);
});
// The parent going away ends this process, whatever it was doing between runs.
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'compiled' });

async function compile(path: string): Promise<{ module: WebAssembly.Module; minPages: number }> {
  const patched = importMemory(readFileSync(path));
  return { module: await WebAssembly.compile(patched.bytes), minPages: patched.minPages };
}

function drain(): void {
  const message = pending.shift();
  if (message === undefined) return;
  running = true;
  const done = runInterpreter(message);
  writeSync(1, `\n${message.endToken}\n`);
  writeSync(2, `\n${message.endToken}\n`);
  process.send?.(done, () => {
    running = false;
    // Dropped instances are only freed by a collection; do it between runs, not during one.
    (globalThis as { gc?: () => void }).gc?.();
    if (pending.length > 0) setImmediate(drain);
  });
}

function runInterpreter(message: PrepareMessage): DoneMessage {
  const memory = new WebAssembly.Memory({
    initial: minPages,
    maximum: Math.max(minPages, Math.floor(message.memoryBytes / PAGE)),
  });
  const wasi = new WASI({
    version: 'preview1',
    args: ['python', '-I', '-S', '-B', '-c', BOOTSTRAP, message.readyToken],
    env: {},
    preopens: { [GUEST_DIR]: message.dir },
    returnOnExit: true,
  });
  const quota = { used: 0, max: message.writeBudget, exceeded: false };
  const imports = {
    wasi_snapshot_preview1: restrict(wasi.getImportObject() as Record<string, unknown>, memory, quota),
    env: { memory },
  };
  let exit: number | null = null;
  let trap: string | null = null;
  try {
    const instance = new WebAssembly.Instance(module, imports as WebAssembly.Imports);
    exit = wasi.start(instance as never);
  } catch (err) {
    trap = (err as Error).message ?? String(err);
  }
  return { type: 'done', exit, trap, memoryBytes: memory.buffer.byteLength, quotaExceeded: quota.exceeded };
}

type WasiFunction = (...args: never[]) => number;

/**
 * The WASI functions the interpreter gets: node:wasi's, minus what a sandboxed program has no
 * business doing. Symlinks and hard links cannot be made (so none can point out of the scratch
 * directory), sockets are refused, and writes to files draw on a byte quota.
 */
function restrict(
  object: Record<string, unknown>,
  memory: WebAssembly.Memory,
  quota: { used: number; max: number; exceeded: boolean },
): Record<string, WasiFunction> {
  const base = object.wasi_snapshot_preview1 as Record<string, WasiFunction>;
  const refused = (errno: number) => () => errno;
  const counted = (original: WasiFunction) =>
    ((fd: number, iovs: number, count: number, ...rest: number[]) => {
      if (fd > 2) {
        const bytes = iovecBytes(memory, iovs, count);
        if (quota.used + bytes > quota.max) {
          quota.exceeded = true;
          return ENOSPC;
        }
        quota.used += bytes;
      }
      return (original as (...args: number[]) => number)(fd, iovs, count, ...rest);
    }) as WasiFunction;
  return {
    ...base,
    path_symlink: refused(EPERM),
    path_link: refused(EPERM),
    sock_accept: refused(ENOTSUP),
    sock_recv: refused(ENOTSUP),
    sock_send: refused(ENOTSUP),
    sock_shutdown: refused(ENOTSUP),
    fd_allocate: refused(ENOTSUP),
    fd_write: counted(base.fd_write!),
    fd_pwrite: counted(base.fd_pwrite!),
    // Growing a file by truncation makes a sparse file; still, keep it within the quota.
    fd_filestat_set_size: ((fd: number, size: bigint) =>
      Number(size) > quota.max
        ? ENOSPC
        : (base.fd_filestat_set_size as (fd: number, size: bigint) => number)(fd, size)) as WasiFunction,
  };
}

/** Total length of an iovec array in the guest's memory. */
function iovecBytes(memory: WebAssembly.Memory, iovs: number, count: number): number {
  const view = new DataView(memory.buffer);
  let total = 0;
  for (let i = 0; i < count; i++) total += view.getUint32(iovs + i * 8 + 4, true);
  return total;
}
