import { createHash } from 'node:crypto';
import { type BreakerOptions, CircuitBreaker, DEFAULT_BREAKER } from '../admission/index.js';
import type { MultiLevelCache } from '../cache/index.js';
import {
  BudgetExhaustedError,
  CircuitOpenError,
  ConcurrencyLimitedError,
  type ErrorBody,
  RateLimitedError,
  ToolArgumentsError,
  ToolForbiddenError,
  ToolNotFoundError,
  ToolTimeoutError,
  toAgentdError,
} from '../errors.js';
import type { AbortTarget, Cancellation, ChildCancellation } from '../lib/cancellation.js';
import { coarseTimer } from '../lib/coarse-timer.js';
import type { ToolCall } from '../llm/index.js';
import type { AgentdMetrics } from '../observability/index.js';
import type { RegisteredTool, ToolRegistry } from './registry.js';

/** The outcome of one tool call, as recorded in the task and returned to the model. */
export interface ToolCallOutcome {
  id: string;
  name: string;
  ok: boolean;
  /** The text the model receives as the tool message. */
  content: string;
  result?: unknown;
  error?: ErrorBody;
  durationMs: number;
}

/** Per-tool limits (implemented by the admission layer): a release function, or a refusal thrown. */
export interface ToolGate {
  admitTool(name: string, holder: string): (() => void) | Promise<() => void>;
}

export interface ToolExecutorOptions {
  /** Longest tool result given to the model, in characters. */
  maxResultChars?: number;
  /** Opens a tool's circuit after repeated failures (timeouts, crashes), so a broken tool fails fast. */
  breaker?: BreakerOptions;
  gate?: ToolGate;
  metrics?: AgentdMetrics;
  /** Results of cacheable tools (a tool's `cacheTtlMs`, or `ttls` by name). */
  results?: MultiLevelCache<{ r: unknown }>;
  /** Result TTLs by tool name (configuration), overriding the tools' own `cacheTtlMs`. */
  ttls?: Readonly<Record<string, number>>;
}

/** Failures that say something about the tool itself, not about the call's arguments or rights. */
/** Codes of an admission refusal (counted in agentd_admission_rejections_total). */
const REFUSALS: ReadonlySet<string> = new Set([
  RateLimitedError.code,
  ConcurrencyLimitedError.code,
  CircuitOpenError.code,
  BudgetExhaustedError.code,
]);

const CALLER_ERRORS: ReadonlySet<string> = new Set([
  ToolArgumentsError.code,
  ToolForbiddenError.code,
  ToolNotFoundError.code,
  RateLimitedError.code,
  ConcurrencyLimitedError.code,
  CircuitOpenError.code,
]);

export interface ToolRunContext {
  /** Tool names this call may use (the agent's list, narrowed by the request). */
  allowed: ReadonlySet<string>;
  /** The task's cancellation; each call gets a child with its own deadline. */
  cancellation: Cancellation;
  taskId: string;
  tenantId: string;
  agent: string;
  /** Default deadline per call; a tool's own `timeoutMs` wins. */
  timeoutMs: number;
  maxParallel: number;
  onStart?: (call: ToolCall) => void;
  onEnd?: (outcome: ToolCallOutcome) => void;
}

/**
 * Runs tool calls: allow-list → argument parsing and schema check → handler under a deadline.
 * Every refusal or failure becomes an error result the model can read and react to; only
 * cancellation of the task itself propagates as an exception.
 */
export class ToolExecutor {
  readonly #registry: ToolRegistry;
  readonly #maxResultChars: number;
  readonly #breakerOptions: BreakerOptions;
  readonly #breakers = new Map<string, CircuitBreaker>();
  readonly #gate: ToolGate | undefined;
  readonly #metrics: AgentdMetrics | undefined;
  readonly #results: MultiLevelCache<{ r: unknown }> | undefined;
  readonly #ttls: Readonly<Record<string, number>>;

  constructor(registry: ToolRegistry, options: ToolExecutorOptions = {}) {
    this.#registry = registry;
    this.#maxResultChars = options.maxResultChars ?? 65_536;
    this.#breakerOptions = options.breaker ?? DEFAULT_BREAKER;
    this.#gate = options.gate;
    this.#metrics = options.metrics;
    this.#results = options.results;
    this.#ttls = options.ttls ?? {};
  }

  /** The circuit breaker of each tool called so far (for readiness and metrics). */
  breakers(): IterableIterator<CircuitBreaker> {
    return this.#breakers.values();
  }

  /** Runs a batch of calls with at most `maxParallel` at once; outcomes keep the calls' order. */
  async run(calls: readonly ToolCall[], ctx: ToolRunContext): Promise<ToolCallOutcome[]> {
    if (calls.length === 1) return [await this.runOne(calls[0]!, ctx)];
    const outcomes = new Array<ToolCallOutcome>(calls.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < calls.length) {
        const index = next++;
        outcomes[index] = await this.runOne(calls[index]!, ctx);
      }
    };
    const workers: Promise<void>[] = [];
    for (let i = 0; i < Math.min(ctx.maxParallel, calls.length); i++) workers.push(worker());
    await Promise.all(workers);
    return outcomes;
  }

  /** Runs one call. Throws only when the task's own signal aborts. */
  async runOne(call: ToolCall, ctx: ToolRunContext): Promise<ToolCallOutcome> {
    const started = performance.now();
    const name = call.function.name;
    ctx.onStart?.(call);
    let outcome: ToolCallOutcome;
    try {
      const result = await this.#invoke(call, ctx);
      outcome = { id: call.id, name, ok: true, content: this.#render(result), result, durationMs: 0 };
    } catch (err) {
      if (ctx.cancellation.aborted) throw ctx.cancellation.reason;
      const error = toAgentdError(err).toBody();
      outcome = { id: call.id, name, ok: false, content: JSON.stringify({ error }), error, durationMs: 0 };
    }
    outcome.durationMs = performance.now() - started;
    const metrics = this.#metrics;
    if (metrics !== undefined) {
      const series = metrics.tool(name);
      if (outcome.ok) series.ok.inc();
      else {
        const code = outcome.error?.code ?? 'error';
        metrics.toolCalls.with(name, code).inc();
        // A tool's limits, its breaker and the sandbox's own admission refuse calls too.
        const limit = outcome.error?.details?.limit ?? outcome.error?.details?.breaker;
        if (REFUSALS.has(code)) metrics.rejections.with(String(limit ?? code)).inc();
      }
      series.duration.observe(outcome.durationMs / 1000);
    }
    ctx.onEnd?.(outcome);
    return outcome;
  }

  async #invoke(call: ToolCall, ctx: ToolRunContext): Promise<unknown> {
    const name = call.function.name;
    if (!ctx.allowed.has(name)) {
      throw new ToolForbiddenError(`tool "${name}" is not allowed for agent "${ctx.agent}"`, {
        details: { tool: name },
      });
    }
    const tool = this.#registry.get(name);
    if (tool === undefined)
      throw new ToolNotFoundError(`no tool named "${name}"`, { details: { tool: name } });
    const args = parseArguments(call.function.arguments, name);
    if (!tool.validate(args)) {
      const first = tool.validate.errors?.[0];
      const field = first?.instancePath ? first.instancePath.slice(1).replace(/\//g, '.') : '(arguments)';
      throw new ToolArgumentsError(
        `invalid arguments for "${name}": ${field} ${first?.message ?? 'is invalid'}`,
        {
          details: { tool: name, field },
        },
      );
    }
    const ttlMs = this.#ttls[name] ?? tool.definition.cacheTtlMs;
    if (ttlMs !== undefined && this.#results !== undefined) {
      // Equal arguments from the same tenant within the TTL reuse the result (one call for concurrent ones).
      const key = createHash('sha256')
        .update(`${ctx.tenantId}\u0000${name}\u0000${JSON.stringify(args)}`)
        .digest('base64url');
      const cached = await this.#results.get(
        key,
        async () => ({ r: await this.#execute(tool, name, args, call, ctx) }),
        {
          ttlMs,
          tags: [`tool:${name}`],
        },
      );
      return cached?.r;
    }
    return this.#execute(tool, name, args, call, ctx);
  }

  /** Calls the handler under the tool's breaker, limits and deadline. */
  async #execute(
    tool: RegisteredTool,
    name: string,
    args: unknown,
    call: ToolCall,
    ctx: ToolRunContext,
  ): Promise<unknown> {
    const breaker = this.#breaker(name);
    if (!breaker.tryAcquire()) {
      throw new CircuitOpenError(`tool "${name}" is failing repeatedly; its circuit is open`, {
        retryAfterMs: breaker.retryAfterMs(),
        details: { tool: name, limit: 'tool.breaker' },
      });
    }
    let release: (() => void) | undefined;
    const timeoutMs = tool.definition.timeoutMs ?? ctx.timeoutMs;
    const cancellation = ctx.cancellation.child();
    const timer = coarseTimer.schedule(timeoutMs, abortOnTimeout, { cancellation, name, timeoutMs });
    const started = performance.now();
    try {
      if (this.#gate !== undefined) release = await this.#gate.admitTool(name, `${ctx.taskId}:${call.id}`);
      const pending = tool.definition.handler(args as Record<string, unknown>, {
        signal: cancellation.signal,
        taskId: ctx.taskId,
        tenantId: ctx.tenantId,
        agent: ctx.agent,
        callId: call.id,
        idempotencyKey: idempotencyKey(ctx.taskId, name, args),
      });
      const result = pending instanceof Promise ? await raceAbort(pending, cancellation) : pending;
      breaker.onSuccess(performance.now() - started);
      return result;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (ctx.cancellation.aborted || (typeof code === 'string' && CALLER_ERRORS.has(code)))
        breaker.onIgnored();
      else breaker.onFailure();
      throw err;
    } finally {
      release?.();
      coarseTimer.cancel(timer);
      cancellation.dispose();
    }
  }

  #breaker(name: string): CircuitBreaker {
    let breaker = this.#breakers.get(name);
    if (breaker === undefined) {
      breaker = new CircuitBreaker(`tool:${name}`, this.#breakerOptions);
      this.#breakers.set(name, breaker);
    }
    return breaker;
  }

  #render(result: unknown): string {
    const text = typeof result === 'string' ? result : (JSON.stringify(result) ?? 'null');
    if (text.length <= this.#maxResultChars) return text;
    return `${text.slice(0, this.#maxResultChars)}… [truncated ${text.length - this.#maxResultChars} characters]`;
  }
}

/** Stable across re-runs of a task: its id, the tool, and the arguments (not the model's call id). */
function idempotencyKey(taskId: string, name: string, args: unknown): string {
  return createHash('sha256')
    .update(`${taskId}\u0000${name}\u0000${JSON.stringify(args)}`)
    .digest('base64url')
    .slice(0, 32);
}

function parseArguments(raw: string, name: string): unknown {
  if (raw.trim() === '') return {};
  try {
    return JSON.parse(raw);
  } catch {
    throw new ToolArgumentsError(`arguments for "${name}" are not valid JSON`, { details: { tool: name } });
  }
}

function abortOnTimeout(state: { cancellation: ChildCancellation; name: string; timeoutMs: number }): void {
  state.cancellation.abortWith(
    new ToolTimeoutError(`tool "${state.name}" did not finish within ${state.timeoutMs} ms`, {
      details: { tool: state.name, timeout_ms: state.timeoutMs },
    }),
  );
}

/** Settles with the handler's promise, or rejects with the abort reason if the call is stopped first. */
function raceAbort<T>(pending: Promise<T>, cancellation: ChildCancellation): Promise<T> {
  if (cancellation.aborted) return Promise.reject(cancellation.reason);
  return new Promise<T>((resolve, reject) => {
    const stop: AbortTarget = { abortWith: reject };
    cancellation.add(stop);
    pending.then(
      (value) => {
        cancellation.remove(stop);
        resolve(value);
      },
      (err: unknown) => {
        cancellation.remove(stop);
        reject(err);
      },
    );
  });
}
