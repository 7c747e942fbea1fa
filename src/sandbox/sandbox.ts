import type { LanguageLimitsConfig, LanguageLimitsOverride, SandboxConfig } from '../config/index.js';
import { ToolArgumentsError } from '../errors.js';
import type { Logger } from '../observability/index.js';
import { SandboxAdmission } from './admission.js';
import { JsPool, type PoolStats } from './javascript/pool.js';
import { QUICKJS_MIN_MEMORY_BYTES } from './javascript/quickjs.js';
import { Isolation, type IsolationLevel } from './python/isolation.js';
import { PythonPool } from './python/pool.js';
import type { InputFile, Language, RunLimits, SandboxResult } from './types.js';

const MB = 1024 * 1024;
/** Longest JSON text of a result that is returned (the model sees at most 64 KiB of a tool result). */
const MAX_RESULT_CHARS = 65_536;

/** One run as the tools and the library ask for it. */
export interface SandboxRunRequest {
  language: Language;
  code: string;
  /** Whose run this is: admission is per tenant. */
  tenantId: string;
  /** The agent asking (its `sandbox.agents` overrides apply); empty for direct calls. */
  agent?: string | undefined;
  timeoutMs?: number | undefined;
  memoryMb?: number | undefined;
  files?: InputFile[] | undefined;
  returnFiles?: boolean | undefined;
}

/** What the sandbox reports about itself. */
export interface SandboxStats {
  javascript: PoolStats | null;
  python: (PoolStats & { isolation: IsolationLevel }) | null;
}

/**
 * The sandbox: admission, limits and the two interpreter pools, created on first use (or at
 * startup with `warm`). A run either returns a result — whatever the program did — or throws an
 * agentd error for a refusal (limits asked for beyond the maximum, admission, a full queue).
 */
export class Sandbox {
  readonly config: SandboxConfig;
  readonly #log: Logger | undefined;
  readonly #admission: SandboxAdmission;
  #js: JsPool | undefined;
  #python: PythonPool | undefined;
  #isolation: Isolation | undefined;
  #closed = false;

  constructor(config: SandboxConfig, log?: Logger) {
    this.config = config;
    this.#log = log;
    this.#admission = new SandboxAdmission({
      maxConcurrentPerTenant: config.max_concurrent_per_tenant,
      breaker: {
        windowMs: config.breaker.window_ms,
        minRequests: config.breaker.min_requests,
        failureRate: config.breaker.failure_rate,
        openMs: config.breaker.open_ms,
      },
    });
    // Asked for bubblewrap explicitly: fail at startup if it is not there, not at the first run.
    if (config.python.isolation === 'bwrap') this.#isolation = Isolation.choose('bwrap');
  }

  /** The isolation level the Python interpreters run under (decided on first use). */
  get isolation(): Isolation {
    this.#isolation ??= Isolation.choose(this.config.python.isolation);
    return this.#isolation;
  }

  /** The directory holding the Python runs' scratch directories, once the pool exists. */
  get scratchRoot(): string | undefined {
    return this.#python?.scratchRoot;
  }

  /** The limits a run gets: the call's values, else the agent's, else the language's defaults. */
  limits(language: Language, agent: string | undefined, timeoutMs?: number, memoryMb?: number): RunLimits {
    const base: LanguageLimitsConfig = this.config[language];
    const own: LanguageLimitsOverride =
      (agent === undefined ? undefined : this.config.agents[agent]?.[language]) ?? {};
    const maxTimeout = own.max_timeout_ms ?? base.max_timeout_ms;
    const maxMemory = own.max_memory_mb ?? base.max_memory_mb;
    const timeout = timeoutMs ?? Math.min(own.timeout_ms ?? base.timeout_ms, maxTimeout);
    const memory = memoryMb ?? Math.min(own.memory_mb ?? base.memory_mb, maxMemory);
    if (timeout > maxTimeout) {
      throw new ToolArgumentsError(`timeout_ms may be at most ${maxTimeout}`, {
        details: { field: 'timeout_ms', max: maxTimeout },
      });
    }
    if (memory > maxMemory) {
      throw new ToolArgumentsError(`memory_mb may be at most ${maxMemory}`, {
        details: { field: 'memory_mb', max: maxMemory },
      });
    }
    const minMemory = language === 'javascript' ? Math.ceil(QUICKJS_MIN_MEMORY_BYTES / MB) + 4 : 32;
    if (memory < minMemory) {
      throw new ToolArgumentsError(`memory_mb must be at least ${minMemory}`, {
        details: { field: 'memory_mb', min: minMemory },
      });
    }
    return {
      timeoutMs: timeout,
      memoryBytes: memory * MB,
      maxOutputBytes: own.max_output_bytes ?? base.max_output_bytes,
    };
  }

  /** Runs a program. Throws only for refusals; everything the program does is in the result. */
  async run(request: SandboxRunRequest, signal?: AbortSignal): Promise<SandboxResult> {
    const limits = this.limits(request.language, request.agent, request.timeoutMs, request.memoryMb);
    const permit = this.#admission.admit(request.tenantId, request.language);
    let outcome: 'ok' | 'crashed' | 'ignored' = 'ignored';
    try {
      const result =
        request.language === 'javascript'
          ? await this.#jsPool().run({ code: request.code, limits }, signal)
          : await this.#pythonPool().run(
              { code: request.code, limits, files: request.files, returnFiles: request.returnFiles },
              signal,
            );
      outcome = result.crashed ? 'crashed' : 'ok';
      if (result.crashed)
        this.#log?.warn({ language: request.language, error: result.error }, 'sandbox run crashed');
      return result;
    } finally {
      permit.release(outcome);
    }
  }

  /** Starts the pools of these languages now (instead of on first use). */
  async warm(languages: readonly Language[]): Promise<void> {
    const pending: Promise<void>[] = [];
    if (languages.includes('javascript')) pending.push(this.#jsPool().warm());
    if (languages.includes('python')) pending.push(this.#pythonPool().warm());
    await Promise.all(pending);
  }

  stats(): SandboxStats {
    return {
      javascript: this.#js?.stats() ?? null,
      python:
        this.#python === undefined ? null : { ...this.#python.stats(), isolation: this.isolation.level },
    };
  }

  /** Process ids of the Python interpreter processes (for measurements). */
  pythonPids(): number[] {
    return this.#python?.pids() ?? [];
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([this.#js?.close(), this.#python?.close()]);
  }

  #jsPool(): JsPool {
    if (this.#js === undefined) {
      const js = this.config.javascript;
      this.#js = new JsPool({
        workers: js.workers,
        maxQueue: js.max_queue,
        memoryBytes: js.memory_mb * MB,
        maxOutputBytes: this.#maxOutput('javascript'),
        maxStackBytes: js.max_stack_kb * 1024,
        maxResultChars: MAX_RESULT_CHARS,
        // A backstop for builtins that never reach an interrupt check; generous, so that a worker
        // starved of CPU on a loaded host still ends by its own interrupt.
        killGraceMs: 1000,
        onFault: (message) => this.#log?.warn({ language: 'javascript' }, message),
      });
      if (this.#closed) void this.#js.close();
    }
    return this.#js;
  }

  #pythonPool(): PythonPool {
    if (this.#python === undefined) {
      const py = this.config.python;
      const isolation = this.isolation;
      this.#log?.info({ isolation: isolation.level }, `Python sandbox isolation: ${isolation.description}`);
      this.#python = new PythonPool({
        processes: py.processes,
        maxQueue: py.max_queue,
        memoryBytes: py.memory_mb * MB,
        writeBudget: py.max_scratch_bytes,
        files: { maxFiles: py.max_files, maxFileBytes: py.max_file_bytes },
        maxResultChars: MAX_RESULT_CHARS,
        maxRunsPerProcess: py.max_runs_per_process,
        isolation,
        onFault: (message) => this.#log?.warn({ language: 'python' }, message),
      });
      if (this.#closed) void this.#python.close();
    }
    return this.#python;
  }

  /** The largest output cap any agent's runs of a language may have. */
  #maxOutput(language: Language): number {
    let max = this.config[language].max_output_bytes;
    for (const agent of Object.values(this.config.agents))
      max = Math.max(max, agent[language]?.max_output_bytes ?? 0);
    return max;
  }
}
