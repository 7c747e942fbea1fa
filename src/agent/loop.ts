import { SpanKind } from '@opentelemetry/api';
import { type AdmissionController, type BudgetCheck, periodOf } from '../admission/index.js';
import { ResponseCache } from '../cache/index.js';
import type { Config, Tier } from '../config/index.js';
import { TIERS } from '../config/index.js';
import {
  type AgentdError,
  BudgetExhaustedError,
  CancelledError,
  MaxIterationsError,
  RateLimitedError,
  TimeoutError,
  toAgentdError,
} from '../errors.js';
import { sleep } from '../lib/cancellation.js';
import { coarseTimer, type TimerEntry } from '../lib/coarse-timer.js';
import { estimateTokens } from '../lib/tokens.js';
import type {
  CallContext,
  ChatMessage,
  ChatRequest,
  LlmCall,
  ModelRoute,
  ModelRouter,
  ModelSelector,
  RouterSink,
} from '../llm/index.js';
import { type LongTermMemory, recallForInput } from '../memory/index.js';
import {
  type AgentdMetrics,
  endSpan,
  type Span,
  type Tracing,
  traceparentOf,
} from '../observability/index.js';
import type { NewMessage, Store } from '../store/index.js';
import type { ToolCallOutcome, ToolExecutor, ToolRegistry, ToolRunContext } from '../tools/index.js';
import type { Agent } from './agent.js';
import { compactSession } from './compaction.js';
import { extractFacts } from './extraction.js';
import {
  cheaperTier,
  nearingBudget,
  type SessionUsage,
  spentBudget,
  type TaskLimits,
  taskLimits,
} from './limits.js';
import type { Task } from './task.js';

export interface LoopDeps {
  router: ModelRouter;
  tools: ToolExecutor;
  registry: ToolRegistry;
  store: Store;
  admission: AdmissionController;
  limits: Config['limits'];
  metrics: AgentdMetrics;
  tracing: Tracing;
  /** Reused model replies for deterministic requests (absent when caching is off). */
  responses: ResponseCache | undefined;
  /** Long-term memory, for agents that recall (absent when memory is off). */
  memory?: LongTermMemory | undefined;
  /** Called once a task's outcome is stored (the runtime's bookkeeping), before `runTask` resolves. */
  retire?: ((task: Task) => void) | undefined;
}

/** A conversation's messages before `begin` (frozen: nothing may be added to it). */
const NO_MESSAGES = Object.freeze([]) as unknown as ChatMessage[];

/** Longest a task waits for its per-minute token budget to refill before it gives up. */
const MAX_TOKEN_WAIT_MS = 30_000;

/** Thrown inside the loop to stop with partial output (budget, iterations). */
class PartialStop extends Error {
  readonly error: AgentdError;
  readonly partial: string | null;
  constructor(error: AgentdError, partial: string | null) {
    super(error.message);
    this.error = error;
    this.partial = partial;
  }
}

/**
 * Runs one task to a terminal state. Never rejects: every outcome (success, failure, timeout,
 * cancellation) ends in `task.finish` and is persisted. A promise chain rather than an async
 * function, so that a running task holds no suspended frame here (10,000 in flight hold 10,000).
 */
export function runTask(task: Task, agent: Agent, deps: LoopDeps): Promise<void> {
  const record = task.record;
  const limits = taskLimits(agent, record.options, deps.limits);
  if (deps.tracing.enabled) {
    task.span = deps.tracing.startTask(
      {
        'agentd.task.id': record.id,
        'agentd.agent': record.agent,
        'agentd.tenant': record.tenant_id,
        'agentd.attempt': record.attempt,
      },
      task.traceparent,
    );
  }
  task.timeoutMs = limits.timeoutMs;
  task.markRunning(agent.eventData);
  deps.store.updateTask(record);
  const timer = coarseTimer.schedule(limits.timeoutMs, abortOnTimeout, task);
  return converse(task, agent, limits, deps).then(
    (answer) => {
      task.finish('succeeded', answer, null);
      settleTask(task, deps, timer);
    },
    (err: unknown) => {
      if (err instanceof PartialStop) {
        record.partial = err.partial !== null;
        task.finish('failed', err.partial, err.error.toBody());
      } else {
        const error = toAgentdError(err);
        task.finish(error.code === CancelledError.code ? 'cancelled' : 'failed', null, error.toBody());
      }
      settleTask(task, deps, timer);
    },
  );
}

/**
 * After the outcome: stops the deadline, stores the final state, records metrics and session
 * usage, then hands the task to `deps.retire` (in the same callback: no further promise per task).
 */
function settleTask(task: Task, deps: LoopDeps, timer: TimerEntry): void {
  const record = task.record;
  coarseTimer.cancel(timer);
  deps.store.updateTask(record);
  recordOutcome(task, deps);
  if (record.session_id !== null) {
    deps.store.addSessionUsage(
      record.session_id,
      record.usage.input_tokens + record.usage.output_tokens,
      record.cost_usd,
    );
  }
  deps.retire?.(task);
}

/**
 * The agent loop for one task: context, then model calls and tool rounds until an answer. Never
 * throws synchronously; a stop with partial output rejects with `PartialStop`.
 */
function converse(task: Task, agent: Agent, limits: TaskLimits, deps: LoopDeps): Promise<string> {
  try {
    const conversation = new Conversation(task, agent, limits, deps);
    if (!conversation.needsContext) return conversation.begin();
    return conversation.loadContext().then(() => conversation.begin());
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * One task's conversation with its model, as a promise chain: while the model answers, the task
 * holds this object, not a suspended async frame (a generator and its registers, ≈ 600 B per
 * task in flight; discuss/0011). The messages array grows in place and is the request's; it and
 * `produced` start as literals of their exact size (a first `push` would give each 17 slots).
 * Two callbacks per conversation (`#answered`, `#callFailed`); the rarer paths make their own.
 */
class Conversation {
  readonly #task: Task;
  readonly #agent: Agent;
  readonly #limits: TaskLimits;
  readonly #deps: LoopDeps;
  readonly #allowed: ReadonlySet<string>;
  readonly #system: ChatMessage;
  /** Recalled memories and the session window, when loaded. */
  #context: ChatMessage[] | undefined;
  #messages: ChatMessage[] = NO_MESSAGES;
  /** The messages this task adds to its session: the input, then every reply and tool result. */
  #produced: ChatMessage[] = NO_MESSAGES;
  /** One request object for every iteration; its messages are set by `begin`. */
  readonly #request: Omit<ChatRequest, 'model'>;
  readonly #callContext: CallContext;
  readonly #cacheable: boolean;
  #chain: ModelRoute[];
  #tier: Tier | undefined;
  #session: SessionUsage | undefined;
  #lastText: string | null = null;
  #toolContext: ToolRunContext | undefined;
  #iteration = 0;
  /** The current model call's span (tracing on). */
  #span: Span | undefined;
  #cached = false;

  constructor(task: Task, agent: Agent, limits: TaskLimits, deps: LoopDeps) {
    this.#task = task;
    this.#agent = agent;
    this.#limits = limits;
    this.#deps = deps;
    const options = task.record.options;
    const toolNames =
      options.tools === undefined ? agent.tools : agent.tools.filter((name) => options.tools!.includes(name));
    this.#allowed = options.tools === undefined ? agent.allowedTools : new Set(toolNames);
    const specs = deps.registry.specs(toolNames);
    const selector: ModelSelector = {
      model: options.model,
      tier: options.tier as ModelSelector['tier'],
      mode: options.mode as ModelSelector['mode'],
    };
    this.#chain = deps.router.resolve(selector, agent.model);
    this.#tier = limits.stepDown ? tierOf(selector, agent.model) : undefined;
    this.#system = { role: 'system', content: agent.systemPrompt };
    const request: Omit<ChatRequest, 'model'> = { messages: NO_MESSAGES };
    if (specs.length > 0) request.tools = specs;
    if (agent.temperature !== undefined) request.temperature = agent.temperature;
    if (limits.maxOutputTokens !== undefined) request.maxTokens = limits.maxOutputTokens;
    this.#request = request;
    this.#callContext = { cancellation: task.cancellation, sink: task };
    this.#cacheable =
      deps.responses !== undefined && ResponseCache.cacheable(request, agent.cache || options.cache === true);
  }

  /** Recalled memories or a session window come before the input. */
  get needsContext(): boolean {
    return (
      (this.#agent.recall !== undefined && this.#deps.memory !== undefined) ||
      this.#task.record.session_id !== null
    );
  }

  async loadContext(): Promise<void> {
    const task = this.#task;
    const record = task.record;
    const agent = this.#agent;
    const deps = this.#deps;
    if (agent.recall !== undefined && deps.memory !== undefined) {
      const recalled = await recallForInput(
        deps.memory,
        agent.recall,
        { tenantId: record.tenant_id, userId: record.user_id, agent: agent.name },
        record.input,
        task.cancellation.signal,
        task.span,
      );
      task.events.append('memory.recalled', { memories: recalled.memories, tokens: recalled.tokens });
      if (recalled.content !== undefined) this.#addContext({ role: 'system', content: recalled.content });
    }
    if (record.session_id !== null) {
      if (agent.compaction !== undefined) await compactSession(task, agent.compaction, this.#chain, deps);
      const window = await deps.store.sessionWindow(
        record.session_id,
        agent.windowMessages,
        agent.windowTokens,
      );
      for (const message of window) this.#addContext(message);
      const limits = this.#limits;
      if (limits.sessionMaxTokens !== undefined || limits.sessionMaxUsd !== undefined) {
        const stored = await deps.store.getSession(record.session_id);
        this.#session = { tokens: stored?.tokens_used ?? 0, usd: stored?.usd_used ?? 0 };
      }
    }
  }

  #addContext(message: ChatMessage): void {
    if (this.#context === undefined) this.#context = [message];
    else this.#context.push(message);
  }

  /** Builds the messages (system, context, input) and makes the first model call. */
  begin(): Promise<string> {
    const userMessage: ChatMessage = { role: 'user', content: this.#task.record.input };
    const context = this.#context;
    this.#context = undefined;
    this.#messages =
      context === undefined ? [this.#system, userMessage] : [this.#system, ...context, userMessage];
    this.#request.messages = this.#messages;
    this.#produced = [userMessage];
    return this.#next();
  }

  /** The next iteration: its token reservation (after the first), then its model call. */
  #next(): Promise<string> {
    const iteration = ++this.#iteration;
    const limits = this.#limits;
    if (iteration > limits.maxIterations) {
      return Promise.reject(
        new PartialStop(
          new MaxIterationsError(
            `agent "${this.#agent.name}" did not finish within ${limits.maxIterations} iterations`,
            { details: { limit: 'max_iterations', max_iterations: limits.maxIterations } },
          ),
          this.#lastText,
        ),
      );
    }
    this.#task.record.iterations = iteration;
    if (iteration === 1) return this.#call();
    return reserveTokens(this.#task, this.#messages, limits, this.#deps, this.#lastText).then(() =>
      this.#call(),
    );
  }

  /** One model call; the conversation goes on in `#answered` when it is in. */
  #call(): Promise<string> {
    const task = this.#task;
    const deps = this.#deps;
    try {
      task.events.append('llm.started', iterationData(this.#iteration));
      // Tracing off (no task span): no attributes object, no span.
      const span =
        task.span === undefined
          ? undefined
          : deps.tracing.startChild(
              task.span,
              'llm.call',
              { 'agentd.iteration': this.#iteration },
              SpanKind.CLIENT,
            );
      this.#span = span;
      if (span !== undefined) this.#callContext.traceparent = traceparentOf(span);
      if (this.#cacheable) {
        return cachedChat(task, this.#chain, this.#request, this.#callContext, deps, deps.responses!).then(
          (reply) => {
            this.#cached = reply.cached;
            return this.#answered(reply.call);
          },
          this.#callFailed,
        );
      }
      return deps.router
        .chat(this.#chain, this.#request, this.#callContext)
        .then(this.#answered, this.#callFailed);
    } catch (err) {
      return this.#callFailed(err);
    }
  }

  readonly #callFailed = (err: unknown): Promise<never> => {
    endSpan(this.#span, {}, toAgentdError(err));
    return Promise.reject(err);
  };

  /** A model reply: usage and events, then the answer or a tool round and the next iteration. */
  readonly #answered = async (call: LlmCall): Promise<string> => {
    const task = this.#task;
    const record = task.record;
    const deps = this.#deps;
    const limits = this.#limits;
    const iteration = this.#iteration;
    const cached = this.#cached;
    this.#cached = false;
    if (this.#span !== undefined) endSpan(this.#span, llmSpanAttributes(call, this.#chain), null);
    this.#span = undefined;
    deps.metrics.costSeries(record.tenant_id, call.model).inc(call.costUsd);
    const result = call.result;
    task.providerMs += call.durationMs;
    const callTokens = result.usage.input_tokens + result.usage.output_tokens;
    record.usage.input_tokens += result.usage.input_tokens;
    record.usage.output_tokens += result.usage.output_tokens;
    record.cost_usd += call.costUsd;
    record.model = call.model;
    const completed: Record<string, unknown> = {
      iteration,
      model: call.model,
      finish_reason: result.finishReason,
      usage: result.usage,
      cost_usd: call.costUsd,
    };
    if (call.failedAttempts.length > 0) completed.failed_attempts = call.failedAttempts;
    if (cached) completed.cached = true;
    task.events.append('llm.completed', completed);
    const assistant: ChatMessage = { role: 'assistant', content: result.content };
    if (result.toolCalls.length > 0) assistant.tool_calls = result.toolCalls;
    this.#messages.push(assistant);
    this.#produced.push(assistant);
    if (result.content !== null && result.content !== '') this.#lastText = result.content;

    const ticket = task.ticket;
    // The local backend settles synchronously: no await (and no microtask turn) for it.
    const settled =
      ticket === undefined ? undefined : deps.admission.settle(ticket, callTokens, call.costUsd);
    const spentShared = settled instanceof Promise ? await settled : settled;
    if (result.toolCalls.length === 0) {
      // The answer is in: a budget reached by this last call does not take it back.
      persistSession(task, this.#produced, deps.store);
      const agent = this.#agent;
      if (agent.extraction !== undefined && deps.memory !== undefined) {
        await extractFacts(task, agent.extraction, agent.name, this.#chain, this.#produced, {
          router: deps.router,
          memory: deps.memory,
          admission: deps.admission,
        });
      }
      return result.content ?? '';
    }
    const spent =
      spentBudget(limits, record, this.#session) ??
      (spentShared === undefined ? undefined : sharedBudgetError(spentShared));
    if (spent !== undefined) throw new PartialStop(spent, this.#lastText);
    if (this.#tier !== undefined && nearingBudget(limits, record)) {
      const cheaper = cheaperTier(this.#tier);
      if (cheaper !== undefined) {
        this.#tier = cheaper;
        this.#chain = stepDown(deps.router, cheaper, this.#chain);
        task.events.append('llm.stepped_down', { tier: cheaper, reason: 'budget' });
      }
    }
    const started = performance.now();
    const outcomes = await deps.tools.run(result.toolCalls, this.#tools());
    task.toolMs += performance.now() - started;
    record.tool_calls += outcomes.length;
    for (const outcome of outcomes) {
      const message: ChatMessage = { role: 'tool', tool_call_id: outcome.id, content: outcome.content };
      this.#messages.push(message);
      this.#produced.push(message);
    }
    return this.#next();
  };

  /** The tools' context, made at the first tool round. */
  #tools(): ToolRunContext {
    if (this.#toolContext !== undefined) return this.#toolContext;
    const task = this.#task;
    const record = task.record;
    const agent = this.#agent;
    const tracing = this.#deps.tracing;
    const toolSpans = new Map<string, Span>();
    this.#toolContext = {
      allowed: this.#allowed,
      cancellation: task.cancellation,
      taskId: record.id,
      tenantId: record.tenant_id,
      userId: record.user_id,
      sessionId: record.session_id,
      agent: agent.name,
      timeoutMs: agent.toolTimeoutMs,
      maxParallel: agent.maxParallelTools,
      onStart: (toolCall) => {
        task.events.append('tool.started', {
          id: toolCall.id,
          name: toolCall.function.name,
          arguments: toolCall.function.arguments,
        });
        const span = tracing.startChild(task.span, 'tool.call', {
          'agentd.tool': toolCall.function.name,
        });
        if (span !== undefined) toolSpans.set(toolCall.id, span);
      },
      onEnd: (outcome) => {
        task.events.append('tool.completed', toolEventData(outcome));
        const span = toolSpans.get(outcome.id);
        if (span !== undefined) {
          toolSpans.delete(outcome.id);
          endSpan(span, { 'agentd.tool.ok': outcome.ok }, outcome.error);
        }
      },
    };
    return this.#toolContext;
  }
}

/**
 * Draws the next call's estimated tokens from the task's per-minute buckets, waiting (within the
 * task's deadline) while they refill; a wait too long stops the task with its partial output.
 */
async function reserveTokens(
  task: Task,
  messages: readonly ChatMessage[],
  limits: TaskLimits,
  deps: LoopDeps,
  partial: string | null,
): Promise<void> {
  const ticket = task.ticket;
  if (ticket === undefined || ticket.plan.tokenDraws.length === 0) return;
  let estimate = limits.maxOutputTokens ?? 256;
  for (const message of messages) estimate += estimateTokens(message.content) + 4;
  for (;;) {
    const wait = await deps.admission.reserveTokens(ticket, estimate);
    if (wait === 0) return;
    if (wait > MAX_TOKEN_WAIT_MS) {
      throw new PartialStop(
        new RateLimitedError('the per-minute token limit leaves no room for the next model call', {
          retryAfterMs: wait,
          details: { limit: ticket.plan.tokenDraws.map((draw) => draw.limit).join(', ') },
        }),
        partial,
      );
    }
    await sleep(wait, task.cancellation);
  }
}

/** Passes streamed output to the task and keeps a copy of the text pieces for the cache. */
class RecordingSink implements RouterSink {
  readonly chunks: string[] = [];
  readonly #task: Task;

  constructor(task: Task) {
    this.#task = task;
  }

  onText(text: string): void {
    this.chunks.push(text);
    this.#task.onText(text);
  }

  onDiscard(error: AgentdError, model: string): void {
    this.chunks.length = 0;
    this.#task.onDiscard(error, model);
  }
}

/**
 * A model call through the response cache. The first of identical requests calls the model and
 * streams live; requests arriving while it runs, or later within the TTL, replay its pieces as a
 * stream. A replayed answer is free: zero usage and cost (the original's usage is in the event).
 */
async function cachedChat(
  task: Task,
  chain: ModelRoute[],
  request: Omit<ChatRequest, 'model'>,
  context: CallContext,
  deps: LoopDeps,
  responses: ResponseCache,
): Promise<{ call: LlmCall; cached: boolean }> {
  const key = ResponseCache.key(task.record.tenant_id, chain[0]?.id ?? '', request);
  let fresh: LlmCall | undefined;
  const reply = await responses.get(task.record.tenant_id, key, async () => {
    const sink = new RecordingSink(task);
    const call = await deps.router.chat(chain, request, { ...context, sink });
    fresh = call;
    return {
      chunks: sink.chunks,
      toolCalls: call.result.toolCalls,
      finishReason: call.result.finishReason,
      usage: call.result.usage,
      model: call.model,
    };
  });
  if (fresh !== undefined) return { call: fresh, cached: false };
  if (reply === undefined) return { call: await deps.router.chat(chain, request, context), cached: false };
  // Let a listener that arrives with the request (a streaming client) subscribe before the
  // replay, so it receives the pieces as a stream.
  await new Promise((resolve) => setImmediate(resolve));
  for (const chunk of reply.chunks) task.onText(chunk);
  const content = reply.chunks.length === 0 ? null : reply.chunks.join('');
  return {
    cached: true,
    call: {
      result: {
        content,
        toolCalls: reply.toolCalls,
        finishReason: reply.finishReason,
        usage: { input_tokens: 0, output_tokens: 0 },
        usageEstimated: false,
        providerModel: reply.model,
        ttftMs: 0,
        skippedChunks: 0,
      },
      model: reply.model,
      provider: 'cache',
      costUsd: 0,
      failedAttempts: [],
      durationMs: 0,
    },
  };
}

/** Records a finished task in metrics and ends its span. */
function recordOutcome(task: Task, deps: LoopDeps): void {
  const record = task.record;
  const series = deps.metrics.agent(record.agent);
  if (record.status === 'succeeded' || record.status === 'failed' || record.status === 'cancelled') {
    series.finished[record.status].inc();
  }
  const totalMs = (record.finished_at ?? Date.now()) - (record.started_at ?? record.created_at);
  series.duration.observe(totalMs / 1000);
  deps.metrics.overheadAll.observe(Math.max(0, totalMs - task.providerMs - task.toolMs) / 1000);
  if (task.span !== undefined) {
    endSpan(
      task.span,
      {
        'agentd.status': record.status,
        'agentd.model': record.model ?? '',
        'agentd.iterations': record.iterations,
        'agentd.tool_calls': record.tool_calls,
        'gen_ai.usage.input_tokens': record.usage.input_tokens,
        'gen_ai.usage.output_tokens': record.usage.output_tokens,
        'agentd.cost_usd': record.cost_usd,
      },
      record.error,
    );
  }
}

/** What an `llm.call` span says: the model asked for and the one that answered, usage, retries. */
function llmSpanAttributes(
  call: LlmCall,
  chain: readonly ModelRoute[],
): Record<string, string | number | boolean> {
  const attributes: Record<string, string | number | boolean> = {
    'gen_ai.request.model': chain[0]?.id ?? '',
    'gen_ai.response.model': call.model,
    'gen_ai.usage.input_tokens': call.result.usage.input_tokens,
    'gen_ai.usage.output_tokens': call.result.usage.output_tokens,
    'agentd.provider': call.provider,
    'agentd.retries': call.failedAttempts.length,
    'agentd.fallback': call.model !== chain[0]?.id,
    'agentd.cost_usd': call.costUsd,
  };
  if (call.result.ttftMs !== undefined) attributes['agentd.ttft_ms'] = call.result.ttftMs;
  return attributes;
}

/** A tenant's or key's budget for the day or month, spent while the task ran. */
function sharedBudgetError(budget: BudgetCheck): AgentdError {
  const now = Date.now();
  return new BudgetExhaustedError(`${budget.limit} reached (${budget.max})`, {
    retryAfterMs: periodOf(budget.period, now).endsAt - now,
    details: { limit: budget.limit, budget: budget.max },
  });
}

/** The tier a task runs on, when its model was chosen by tier (explicit models never step down). */
function tierOf(selector: ModelSelector, agentModel: string | undefined): Tier | undefined {
  if (selector.model !== undefined)
    return (TIERS as readonly string[]).includes(selector.model) ? (selector.model as Tier) : undefined;
  if (selector.tier !== undefined) return selector.tier;
  if (selector.mode !== undefined) return undefined;
  if (agentModel === undefined) return 'medium';
  return (TIERS as readonly string[]).includes(agentModel) ? (agentModel as Tier) : undefined;
}

function stepDown(router: ModelRouter, tier: Tier, current: ModelRoute[]): ModelRoute[] {
  try {
    return router.resolve({ tier }, undefined);
  } catch {
    return current;
  }
}

function toolEventData(outcome: ToolCallOutcome): Record<string, unknown> {
  const data: Record<string, unknown> = {
    id: outcome.id,
    name: outcome.name,
    ok: outcome.ok,
    duration_ms: Math.round(outcome.durationMs * 1000) / 1000,
  };
  if (outcome.ok) data.result = outcome.result;
  else data.error = outcome.error;
  return data;
}

/** Appends the exchange to the session: the user turn, tool calls and results, and the answer. */
function persistSession(task: Task, produced: ChatMessage[], store: Store): void {
  const record = task.record;
  if (record.session_id === null) return;
  const messages: NewMessage[] = produced.map((message) => ({
    message,
    tokens: messageTokens(message),
    task_id: record.id,
  }));
  void store.appendMessages(record.session_id, record.tenant_id, messages);
}

function messageTokens(message: ChatMessage): number {
  let tokens = estimateTokens(message.content) + 4;
  if (message.tool_calls !== undefined) {
    for (const call of message.tool_calls) tokens += estimateTokens(call.function.arguments) + 4;
  }
  return tokens;
}

/** `llm.started` data by iteration, shared by every task (frozen; bounded by max_iterations). */
const ITERATION_DATA: Readonly<{ iteration: number }>[] = [];

function iterationData(iteration: number): Readonly<{ iteration: number }> {
  let data = ITERATION_DATA[iteration];
  if (data === undefined) {
    data = Object.freeze({ iteration });
    ITERATION_DATA[iteration] = data;
  }
  return data;
}

function abortOnTimeout(task: Task): void {
  const timeoutMs = task.timeoutMs;
  task.cancellation.abortWith(
    new TimeoutError(`task did not finish within ${timeoutMs} ms`, {
      details: { limit: 'timeout_ms', timeout_ms: timeoutMs },
    }),
  );
}
