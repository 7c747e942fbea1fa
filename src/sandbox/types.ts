/** The languages the sandbox runs. */
export type Language = 'javascript' | 'python';

/** The limits one run is held to, resolved from configuration, the agent and the call. */
export interface RunLimits {
  /** Wall-clock limit of the program itself (not counting a wait for a free interpreter). */
  timeoutMs: number;
  /** Hard maximum of the interpreter's WebAssembly memory. */
  memoryBytes: number;
  /** Cap of stdout and of stderr, each; a run that writes more is stopped. */
  maxOutputBytes: number;
}

/** A file the program left in its scratch directory (Python only). */
export interface SandboxFile {
  /** Path relative to the scratch directory, `/`-separated. */
  name: string;
  size: number;
  encoding: 'utf8' | 'base64';
  /** The content, cut at `max_file_bytes` (then `truncated` is true). */
  content: string;
  truncated: boolean;
}

/** A file to place in the scratch directory before the run (Python only). */
export interface InputFile {
  name: string;
  content: string;
  encoding?: 'utf8' | 'base64' | undefined;
}

/**
 * The outcome of one run. A program that fails (exception, timeout, memory, crash) is still a
 * result: the fields say what happened; only admission refusals and infrastructure faults throw.
 */
export interface SandboxResult {
  language: Language;
  stdout: string;
  stderr: string;
  /** The value of the program's last expression, as JSON (null when none or not serialisable). */
  result: unknown;
  /** 0 on success, 1 on an uncaught exception, the program's own exit status, or null when stopped. */
  exit: number | null;
  timed_out: boolean;
  memory_exceeded: boolean;
  /** stdout or stderr passed `max_output_bytes`: the run was stopped and the output cut. */
  output_truncated: boolean;
  /** The interpreter died (a trap, a signal, a worker that had to be terminated). */
  crashed: boolean;
  /** Why the run did not end normally, in one line; null when it did. */
  error: string | null;
  duration_ms: number;
  /** Files left in the scratch directory (Python; present when the call asked for them). */
  files?: SandboxFile[];
}

/** One run as the pools receive it. */
export interface RunRequest {
  code: string;
  limits: RunLimits;
  /** Python only. */
  files?: InputFile[] | undefined;
  /** Python only: return the files left in the scratch directory. */
  returnFiles?: boolean | undefined;
}

/** Creates a result with every field set, so all results share one shape. */
export function emptyResult(language: Language): SandboxResult {
  return {
    language,
    stdout: '',
    stderr: '',
    result: null,
    exit: null,
    timed_out: false,
    memory_exceeded: false,
    output_truncated: false,
    crashed: false,
    error: null,
    duration_ms: 0,
  };
}
