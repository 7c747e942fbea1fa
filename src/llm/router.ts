import { type BreakerOptions, breakerOptions, CircuitBreaker } from '../admission/index.js';
import type { Config, Mode, Tier } from '../config/index.js';
import { TIERS } from '../config/index.js';
import {
  type AgentdError,
  CircuitOpenError,
  ConfigError,
  InvalidRequestError,
  RateLimitedError,
  toAgentdError,
} from '../errors.js';
import { type Cancellation, sleep } from '../lib/cancellation.js';
import { estimateTokens } from '../lib/tokens.js';
import type { AgentdMetrics, ModelSeries } from '../observability/index.js';
import { countsAgainstBreaker, decideRetry, type RetryPolicy } from './retry.js';
import type {
  CallTimeouts,
  ChatRequest,
  ChatResult,
  Provider,
  StreamFlow,
  StreamSink,
  Usage,
} from './types.js';

/** A model the router can call: where it lives, what it costs, and its breaker. */
export interface ModelRoute {
  /** The id used in config, requests and results (`gpt-4o-mini`, or `provider/model`). */
  id: string;
  providerName: string;
  provider: Provider;
  /** The provider's own name for the model. */
  upstreamModel: string;
  inputUsdPerMtok: number;
  outputUsdPerMtok: number;
  contextFallback: string | undefined;
  /** The model's context window in tokens, when configured. */
  contextWindow: number | undefined;
  fallbacks: string[];
  timeouts: CallTimeouts;
  breaker: CircuitBreaker;
  /** Pre-bound metric series for this model (when metrics are on). */
  metrics: ModelSeries | undefined;
}

/** How a request picks a model: an explicit model or tier wins over a mode, which wins over the agent's default. */
export interface ModelSelector {
  model?: string | undefined;
  tier?: Tier | undefined;
  mode?: Mode | undefined;
}

/** Streamed output plus notice that output already streamed from a failed attempt is void. */
export interface RouterSink extends StreamSink {
  onDiscard?(error: AgentdError, model: string): void;
}

export interface FailedAttempt {
  model: string;
  code: string;
  message: string;
}

/** The outcome of one routed LLM call. */
export interface LlmCall {
  result: ChatResult;
  /** The model that actually answered. */
  model: string;
  provider: string;
  /** Cost of the answering attempt only; failed attempts are not billed. */
  costUsd: number;
  /** Attempts that failed before the answer (retries and fail-overs). */
  failedAttempts: FailedAttempt[];
  /** Milliseconds spent waiting on providers, including backoff. */
  durationMs: number;
}

/**
 * Per-model limits, consulted before each attempt (implemented by the admission layer).
 * `admit` draws a request and `estimate` tokens, answering 0 or the milliseconds until there is
 * room; `settle` replaces the estimate by the actual usage afterwards.
 */
export interface ModelGate {
  limits(model: string): boolean;
  admit(model: string, estimate: number): number | Promise<number>;
  settle(model: string, estimate: number, tokens: number): void;
}

export interface CallContext {
  cancellation?: Cancellation | undefined;
  sink?: RouterSink | undefined;
  stream?: boolean;
  traceparent?: string | undefined;
}

/**
 * Resolves model selectors to fail-over chains and runs calls through them:
 * breaker → attempt → retry with backoff (or Retry-After) → next model in the chain.
 */
export class ModelRouter {
  readonly #config: Config;
  readonly #providers: Map<string, Provider>;
  readonly #routes = new Map<string, ModelRoute>();
  readonly #chains = new Map<string, ModelRoute[]>();
  readonly #retry: RetryPolicy;
  readonly #breakerOptions: BreakerOptions;
  #gate: ModelGate | undefined;
  readonly #metrics: AgentdMetrics | undefined;

  constructor(config: Config, providers: Map<string, Provider>, metrics?: AgentdMetrics) {
    this.#config = config;
    this.#providers = providers;
    this.#metrics = metrics;
    const retry = config.llm.retry;
    this.#retry = {
      maxAttempts: retry.max_attempts,
      baseDelayMs: retry.base_delay_ms,
      maxDelayMs: retry.max_delay_ms,
      maxRetryAfterMs: retry.max_retry_after_ms,
    };
    this.#breakerOptions = breakerOptions(config.llm.breaker);
  }

  /** Installs per-model limits (the admission layer). */
  setGate(gate: ModelGate): void {
    this.#gate = gate;
  }

  /** Every route built so far (for readiness and metrics). */
  routes(): IterableIterator<ModelRoute> {
    return this.#routes.values();
  }

  /** The fail-over chain for a selector, given the agent's default model or tier. */
  resolve(selector: ModelSelector, agentDefault: string | undefined): ModelRoute[] {
    const key =
      selector.model ??
      (selector.tier !== undefined ? `tier:${selector.tier}` : undefined) ??
      (selector.mode !== undefined ? `tier:${this.#config.modes[selector.mode]}` : undefined) ??
      (agentDefault !== undefined && isTier(agentDefault) ? `tier:${agentDefault}` : agentDefault) ??
      'tier:medium';
    let chain = this.#chains.get(key);
    if (chain === undefined) {
      chain = this.#buildChain(key);
      this.#chains.set(key, chain);
    }
    return chain;
  }

  /** One route by id (catalog model or `provider/model`). */
  route(id: string): ModelRoute {
    let route = this.#routes.get(id);
    if (route === undefined) {
      route = this.#buildRoute(id);
      this.#routes.set(id, route);
    }
    return route;
  }

  /**
   * Runs a chat request through a chain until a model answers or the policy gives up.
   *
   * The common case — the first model, no per-model limit on it, its circuit closed — is a
   * promise chain on the one attempt, not an async function: a call waiting on its provider holds
   * no suspended frame here (10,000 calls in flight held 10,000). Anything else, and a failure of
   * that attempt, goes through the retry loop.
   */
  chat(
    chain: readonly ModelRoute[],
    request: Omit<ChatRequest, 'model'>,
    ctx: CallContext,
  ): Promise<LlmCall> {
    const route = chain[0];
    if (
      route === undefined ||
      ctx.cancellation?.reason !== undefined ||
      this.#gate?.limits(route.id) === true ||
      route.breaker.state !== 'closed'
    ) {
      return this.#chatThroughChain(chain, request, ctx, undefined);
    }
    const started = performance.now();
    const sink = new AttemptSink(ctx.sink);
    route.breaker.tryAcquire();
    let attempt: Promise<ChatResult>;
    try {
      attempt = this.#attempt(route, request, ctx, sink);
    } catch (err) {
      attempt = Promise.reject(err);
    }
    return attempt.then(
      (result) => this.#answered(route, result, started, started, 0, NO_FAILED_ATTEMPTS),
      (err: unknown) => this.#chatThroughChain(chain, request, ctx, { error: err, sink, started }),
    );
  }

  /**
   * The retry loop: breaker → attempt → retry with backoff (or Retry-After) → next model in the
   * chain. `first` is the failed first attempt on the chain's first model, when `chat` made it.
   */
  async #chatThroughChain(
    chain: readonly ModelRoute[],
    request: Omit<ChatRequest, 'model'>,
    ctx: CallContext,
    first: FirstAttempt | undefined,
  ): Promise<LlmCall> {
    const started = first?.started ?? performance.now();
    // Nothing below is allocated on the common path (first model answers) except the sink.
    let failedAttempts: FailedAttempt[] = NO_FAILED_ATTEMPTS;
    let next = 0;
    let detours: ModelRoute[] | undefined;
    let tried: string[] | undefined;
    const sink = first?.sink ?? new AttemptSink(ctx.sink);
    let lastError: AgentdError | undefined;
    let allOpen = first === undefined;
    let minRetryAfter = Number.POSITIVE_INFINITY;
    let resumed = first;

    if (first === undefined && ctx.cancellation?.reason !== undefined) throw ctx.cancellation.reason;
    for (;;) {
      const route = detours !== undefined && detours.length > 0 ? detours.shift() : chain[next++];
      if (route === undefined) break;
      if (tried?.includes(route.id)) continue;
      for (let attempt = 1; ; attempt++) {
        let attemptStarted: number;
        let error: AgentdError;
        if (resumed !== undefined) {
          attemptStarted = resumed.started;
          error = attemptError(route, resumed.error, ctx);
          resumed = undefined;
        } else {
          let estimate = 0;
          const gate = this.#gate;
          if (gate?.limits(route.id)) {
            estimate = estimateRequest(request);
            const wait = await gate.admit(route.id, estimate);
            if (wait > 0) {
              const limited = new RateLimitedError(`model ${route.id} is at its configured limit`, {
                retryAfterMs: Number.isFinite(wait) ? wait : undefined,
                details: { limit: 'model', model: route.id },
              });
              lastError = limited;
              if (failedAttempts === NO_FAILED_ATTEMPTS) failedAttempts = [];
              failedAttempts.push({ model: route.id, code: limited.code, message: limited.message });
              const more = next < chain.length || (detours !== undefined && detours.length > 0);
              if (!more && wait <= this.#retry.maxRetryAfterMs) {
                await sleep(wait, ctx.cancellation);
                attempt--;
                continue;
              }
              allOpen = false;
              break;
            }
          }
          if (!route.breaker.tryAcquire()) {
            const retryAfterMs = route.breaker.retryAfterMs();
            minRetryAfter = Math.min(minRetryAfter, retryAfterMs);
            lastError ??= new CircuitOpenError(`the circuit for ${route.id} is open`, { retryAfterMs });
            if (failedAttempts === NO_FAILED_ATTEMPTS) failedAttempts = [];
            failedAttempts.push({ model: route.id, code: CircuitOpenError.code, message: 'circuit open' });
            break;
          }
          allOpen = false;
          sink.emitted = false;
          attemptStarted = performance.now();
          try {
            const result = await this.#attempt(route, request, ctx, sink);
            return this.#answered(route, result, attemptStarted, started, estimate, failedAttempts);
          } catch (err) {
            error = attemptError(route, err, ctx);
          }
        }
        if (countsAgainstBreaker(error)) route.breaker.onFailure();
        else route.breaker.onIgnored();
        if (route.metrics !== undefined) {
          this.#metrics?.llmRequests.with(route.providerName, route.id, error.code).inc();
          route.metrics.duration.observe((performance.now() - attemptStarted) / 1000);
        }
        if (failedAttempts === NO_FAILED_ATTEMPTS) failedAttempts = [];
        failedAttempts.push({ model: route.id, code: error.code, message: error.message });
        if (sink.emitted) ctx.sink?.onDiscard?.(error, route.id);
        lastError = error;
        const decision = decideRetry(this.#retry, error, attempt);
        if (decision.kind === 'retry') {
          await sleep(decision.delayMs, ctx.cancellation);
          continue;
        }
        if (decision.kind === 'fail') throw withAttempts(error, failedAttempts);
        if (decision.kind === 'context_fallback') {
          if (route.contextFallback === undefined) throw withAttempts(error, failedAttempts);
          if (detours === undefined) detours = [];
          detours.unshift(this.route(route.contextFallback));
        }
        break;
      }
      if (tried === undefined) tried = [route.id];
      else tried.push(route.id);
    }
    if (allOpen && lastError !== undefined) {
      throw withAttempts(
        new CircuitOpenError(
          `every model for this request has an open circuit (${(tried ?? []).join(', ')})`,
          {
            retryAfterMs: Number.isFinite(minRetryAfter) ? minRetryAfter : undefined,
          },
        ),
        failedAttempts,
      );
    }
    throw withAttempts(lastError ?? new ConfigError('no model to call'), failedAttempts);
  }

  /** One attempt on one model. */
  #attempt(
    route: ModelRoute,
    request: Omit<ChatRequest, 'model'>,
    ctx: CallContext,
    sink: AttemptSink,
  ): Promise<ChatResult> {
    return route.provider.chat(
      { ...request, model: route.upstreamModel },
      {
        cancellation: ctx.cancellation,
        timeouts: route.timeouts,
        sink,
        stream: ctx.stream ?? true,
        traceparent: ctx.traceparent,
      },
    );
  }

  /** An attempt answered: the breaker, metrics and model limit learn it, and the call is done. */
  #answered(
    route: ModelRoute,
    result: ChatResult,
    attemptStarted: number,
    started: number,
    estimate: number,
    failedAttempts: FailedAttempt[],
  ): LlmCall {
    const elapsed = performance.now() - attemptStarted;
    route.breaker.onSuccess(elapsed);
    const series = route.metrics;
    if (series !== undefined) {
      series.ok.inc();
      series.duration.observe(elapsed / 1000);
      if (result.ttftMs !== undefined) series.ttft.observe(result.ttftMs / 1000);
      series.inputTokens.inc(result.usage.input_tokens);
      series.outputTokens.inc(result.usage.output_tokens);
    }
    if (estimate > 0)
      this.#gate?.settle(route.id, estimate, result.usage.input_tokens + result.usage.output_tokens);
    return {
      result,
      model: route.id,
      provider: route.providerName,
      costUsd: costOf(route, result.usage),
      failedAttempts,
      durationMs: performance.now() - started,
    };
  }

  #buildChain(key: string): ModelRoute[] {
    if (key.startsWith('tier:')) {
      const tier = key.slice(5) as Tier;
      const ids = this.#config.tiers[tier];
      if (ids === undefined || ids.length === 0)
        throw new ConfigError(`tier "${tier}" has no models (set tiers.${tier})`);
      return ids.map((id) => this.route(id));
    }
    if (isTier(key)) return this.#buildChain(`tier:${key}`);
    const primary = this.route(key);
    return [primary, ...primary.fallbacks.map((id) => this.route(id))];
  }

  #buildRoute(id: string): ModelRoute {
    const entry = this.#config.models[id];
    let providerName: string;
    let upstreamModel: string;
    if (entry !== undefined) {
      providerName = entry.provider;
      upstreamModel = entry.name ?? id;
    } else {
      const slash = id.indexOf('/');
      if (slash > 0 && this.#providers.has(id.slice(0, slash))) {
        providerName = id.slice(0, slash);
        upstreamModel = id.slice(slash + 1);
      } else {
        throw new InvalidRequestError(
          `unknown model "${id}": use a model from \`models\`, a tier, or provider/model`,
          {
            details: { field: 'model' },
          },
        );
      }
    }
    const provider = this.#providers.get(providerName);
    if (provider === undefined)
      throw new ConfigError(`model "${id}" names an unknown provider "${providerName}"`);
    const defaults = this.#config.llm.timeouts;
    const own = this.#config.providers[providerName]?.timeouts;
    return {
      id,
      providerName,
      provider,
      upstreamModel,
      inputUsdPerMtok: entry?.input_usd_per_mtok ?? 0,
      outputUsdPerMtok: entry?.output_usd_per_mtok ?? 0,
      contextFallback: entry?.context_fallback,
      contextWindow: entry?.context_window,
      fallbacks: entry?.fallbacks ?? [],
      timeouts: {
        headersMs: own?.headers_ms ?? defaults.headers_ms,
        firstTokenMs: own?.first_token_ms ?? defaults.first_token_ms,
        idleMs: own?.idle_ms ?? defaults.idle_ms,
      },
      breaker: new CircuitBreaker(id, this.#breakerOptions),
      metrics: this.#metrics?.model(providerName, id),
    };
  }
}

/** USD cost of a usage on a route. */
export function costOf(
  route: Pick<ModelRoute, 'inputUsdPerMtok' | 'outputUsdPerMtok'>,
  usage: Usage,
): number {
  return (
    (usage.input_tokens * route.inputUsdPerMtok + usage.output_tokens * route.outputUsdPerMtok) / 1_000_000
  );
}

const NO_FAILED_ATTEMPTS: FailedAttempt[] = [];

/** The first attempt `chat` made outside the retry loop, which failed. */
interface FirstAttempt {
  error: unknown;
  sink: AttemptSink;
  started: number;
}

/** What a failed attempt means: the task's cancellation (rethrown at once), or an agentd error. */
function attemptError(route: ModelRoute, err: unknown, ctx: CallContext): AgentdError {
  const cancelled = ctx.cancellation?.reason;
  if (cancelled !== undefined) {
    route.breaker.onIgnored();
    throw cancelled;
  }
  return toAgentdError(err);
}

/** Tokens a request will use at most: its messages plus its output allowance (256 if unset). */
function estimateRequest(request: Omit<ChatRequest, 'model'>): number {
  let tokens = request.maxTokens ?? 256;
  for (const message of request.messages) tokens += estimateTokens(message.content) + 4;
  return tokens;
}

function isTier(name: string): name is Tier {
  return (TIERS as readonly string[]).includes(name);
}

function withAttempts(error: AgentdError, attempts: FailedAttempt[]): AgentdError {
  if (attempts.length > 1) error.details = { ...error.details, attempts };
  return error;
}

/** Forwards streamed output and remembers whether the current attempt emitted anything. */
class AttemptSink implements StreamSink {
  readonly #target: StreamSink | undefined;
  emitted = false;

  constructor(target: StreamSink | undefined) {
    this.#target = target;
  }

  onStreamStart(flow: StreamFlow): void {
    this.#target?.onStreamStart?.(flow);
  }

  onText(text: string): void {
    this.emitted = true;
    this.#target?.onText?.(text);
  }

  onToolCallStart(index: number, id: string, name: string): void {
    this.emitted = true;
    this.#target?.onToolCallStart?.(index, id, name);
  }

  onChunk(data: string, usageOnly: boolean): void {
    const target = this.#target;
    if (target?.onChunk === undefined) return;
    // A forwarded chunk is output: a failed attempt after it must be discarded by the receiver.
    this.emitted = true;
    target.onChunk(data, usageOnly);
  }

  onBody(body: Buffer, text: string): void {
    this.#target?.onBody?.(body, text);
  }
}
