import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidRequestError } from '../../errors.js';
import type { InputFile, SandboxFile } from '../types.js';
import { RESULT_FILE } from './bootstrap.js';

/** Limits on the files a run receives and returns. */
export interface FileLimits {
  maxFiles: number;
  maxFileBytes: number;
}

const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/;
const MAX_DEPTH = 4;

/**
 * The directory tree the Python sandbox works in: `<tmp>/agentd-sandbox-XXXX/` (mode 0700), one
 * sub-directory per interpreter process (the only part of the host that process can see when
 * it runs under bubblewrap), and in it a fresh directory per run.
 */
export class ScratchRoot {
  readonly path: string;
  #seq = 0;

  constructor(base = tmpdir()) {
    this.path = mkdtempSync(join(base, 'agentd-sandbox-'));
  }

  /** A directory for one interpreter process. */
  processDir(id: number): string {
    const dir = join(this.path, `p${id}`);
    mkdirSync(dir, { mode: 0o700 });
    return dir;
  }

  /** A new, empty directory for one run inside a process's directory. */
  runDir(processDir: string): string {
    const dir = join(processDir, `r${++this.#seq}`);
    mkdirSync(dir, { mode: 0o700 });
    return dir;
  }

  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

/**
 * Checks that a run directory is exactly as agentd made it: a real directory (not a link),
 * owned by this process's user, and empty. Anything else means something on the host planted
 * it, and the run is refused. Returns the reason, or undefined when it is pristine.
 */
export function pristine(dir: string): string | undefined {
  const stat = lstatSync(dir, { throwIfNoEntry: false });
  if (stat === undefined) return 'the scratch directory is gone';
  if (!stat.isDirectory()) return 'the scratch directory is not a plain directory';
  if (process.getuid !== undefined && stat.uid !== process.getuid())
    return 'the scratch directory has another owner';
  const entries = readdirSync(dir, { withFileTypes: true });
  if (entries.length === 0) return undefined;
  const first = entries[0]!;
  const kind = first.isSymbolicLink() ? 'a symlink' : first.isDirectory() ? 'a directory' : 'a file';
  return `the scratch directory holds ${kind} ("${first.name}") that agentd did not put there`;
}

/** Validates input files (names, count, sizes) before anything is written. */
export function checkInputs(files: readonly InputFile[], limits: FileLimits): Buffer[] {
  if (files.length > limits.maxFiles) {
    throw new InvalidRequestError(`at most ${limits.maxFiles} files can be given`, {
      details: { field: 'files' },
    });
  }
  const seen = new Set<string>();
  return files.map((file, index) => {
    if (!FILE_NAME.test(file.name) || file.name === RESULT_FILE) {
      throw new InvalidRequestError(
        `files[${index}].name must be a plain file name (letters, digits, _ . -; no slashes or leading dot)`,
        { details: { field: `files.${index}.name` } },
      );
    }
    if (seen.has(file.name)) {
      throw new InvalidRequestError(`files[${index}].name "${file.name}" is given twice`, {
        details: { field: `files.${index}.name` },
      });
    }
    seen.add(file.name);
    const bytes = Buffer.from(file.content, file.encoding === 'base64' ? 'base64' : 'utf8');
    if (bytes.length > limits.maxFileBytes) {
      throw new InvalidRequestError(`files[${index}] is larger than ${limits.maxFileBytes} bytes`, {
        details: { field: `files.${index}.content` },
      });
    }
    return bytes;
  });
}

/** Writes checked input files into a pristine run directory; never follows or replaces anything. */
export function writeInputs(dir: string, files: readonly InputFile[], contents: readonly Buffer[]): void {
  for (let i = 0; i < files.length; i++) {
    const fd = openSync(
      join(dir, files[i]!.name),
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    try {
      writeSync(fd, contents[i]!);
    } finally {
      closeSync(fd);
    }
  }
}

/** Reads the bootstrap's result file (if it is a plain file of sane size), then removes it. */
export function takeResultFile(dir: string, maxBytes: number): string | undefined {
  const path = join(dir, RESULT_FILE);
  const stat = lstatSync(path, { throwIfNoEntry: false });
  if (stat === undefined || !stat.isFile()) return undefined;
  const text = stat.size <= maxBytes ? readCapped(path, maxBytes).bytes.toString('utf8') : undefined;
  rmSync(path, { force: true });
  return text;
}

/**
 * The files a run left behind: plain files only (links and special files are skipped, never
 * followed), depth-first in name order, at most `maxFiles`, each cut at `maxFileBytes`.
 */
export function collectFiles(dir: string, limits: FileLimits): SandboxFile[] {
  const files: SandboxFile[] = [];
  walk(dir, '', 0, limits, files);
  return files;
}

function walk(dir: string, prefix: string, depth: number, limits: FileLimits, out: SandboxFile[]): void {
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const entry of entries) {
    if (out.length >= limits.maxFiles) return;
    const name = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (depth + 1 < MAX_DEPTH) walk(path, name, depth + 1, limits, out);
    } else if (entry.isFile() && name !== RESULT_FILE) {
      const { bytes, size } = readCapped(path, limits.maxFileBytes);
      const text = utf8(bytes);
      out.push({
        name,
        size,
        encoding: text === undefined ? 'base64' : 'utf8',
        content: text ?? bytes.toString('base64'),
        truncated: size > bytes.length,
      });
    }
  }
}

/** Reads at most `max` bytes of a plain file without following a link in its place. */
function readCapped(path: string, max: number): { bytes: Buffer; size: number } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    const bytes = Buffer.alloc(Math.min(max, stat.size));
    let read = 0;
    while (read < bytes.length) {
      const n = readSync(fd, bytes, read, bytes.length - read, read);
      if (n === 0) break;
      read += n;
    }
    return { bytes: bytes.subarray(0, read), size: stat.size };
  } finally {
    closeSync(fd);
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function utf8(bytes: Buffer): string | undefined {
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Removes a run directory and everything in it (links are removed, not followed). */
export function removeRunDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
