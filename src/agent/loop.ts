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
}

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

/** After the outcome: stops the deadline, stores the final state, records metrics and session usage. */
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
}

async function converse(task: Task, agent: Agent, limits: TaskLimits, deps: LoopDeps): Promise<string> {
  const record = task.record;
  const options = record.options;
  const toolNames =
    options.tools === undefined ? agent.tools : agent.tools.filter((name) => options.tools!.includes(name));
  const allowed = options.tools === undefined ? agent.allowedTools : new Set(toolNames);
  const specs = deps.registry.specs(toolNames);
  const selector: ModelSelector = {
    model: options.model,
    tier: options.tier as ModelSelector['tier'],
    mode: options.mode as ModelSelector['mode'],
  };
  let chain = deps.router.resolve(selector, agent.model);
  let tier = limits.stepDown ? tierOf(selector, agent.model) : undefined;

  const messages: ChatMessage[] = [{ role: 'system', content: agent.systemPrompt }];
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
    if (recalled.content !== undefined) messages.push({ role: 'system', content: recalled.content });
  }
  let session: SessionUsage | undefined;
  if (record.session_id !== null) {
    if (agent.compaction !== undefined) await compactSession(task, agent.compaction, chain, deps);
    const window = await deps.store.sessionWindow(
      record.session_id,
      agent.windowMessages,
      agent.windowTokens,
    );
    for (const message of window) messages.push(message);
    if (limits.sessionMaxTokens !== undefined || limits.sessionMaxUsd !== undefined) {
      const stored = await deps.store.getSession(record.session_id);
      session = { tokens: stored?.tokens_used ?? 0, usd: stored?.usd_used ?? 0 };
    }
  }
  const userMessage: ChatMessage = { role: 'user', content: record.input };
  messages.push(userMessage);
  const produced: ChatMessage[] = [userMessage];
  let lastText: string | null = null;
  let toolContext: ToolRunContext | undefined;

  // One request object for every iteration: `messages` grows in place.
  const request: Omit<ChatRequest, 'model'> = { messages };
  if (specs.length > 0) request.tools = specs;
  if (agent.temperature !== undefined) request.temperature = agent.temperature;
  if (limits.maxOutputTokens !== undefined) request.maxTokens = limits.maxOutputTokens;
  const callContext: CallContext = { cancellation: task.cancellation, sink: task };

  for (let iteration = 1; iteration <= limits.maxIterations; iteration++) {
    record.iterations = iteration;
    if (iteration > 1) await reserveTokens(task, messages, limits, deps, lastText);
    task.events.append('llm.started', iterationData(iteration));
    // Tracing off (no task span): no attributes object, no span.
    const span =
      task.span === undefined
        ? undefined
        : deps.tracing.startChild(task.span, 'llm.call', { 'agentd.iteration': iteration }, SpanKind.CLIENT);
    if (span !== undefined) callContext.traceparent = traceparentOf(span);
    let call: LlmCall;
    let cached = false;
    try {
      if (
        deps.responses !== undefined &&
        ResponseCache.cacheable(request, agent.cache || options.cache === true)
      ) {
        ({ call, cached } = await cachedChat(task, chain, request, callContext, deps, deps.responses));
      } else {
        call = await deps.router.chat(chain, request, callContext);
      }
    } catch (err) {
      endSpan(span, {}, toAgentdError(err));
      throw err;
    }
    if (span !== undefined) endSpan(span, llmSpanAttributes(call, chain), null);
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
    messages.push(assistant);
    produced.push(assistant);
    if (result.content !== null && result.content !== '') lastText = result.content;

    const ticket = task.ticket;
    // The local backend settles synchronously: no await (and no microtask turn) for it.
    const settled =
      ticket === undefined ? undefined : deps.admission.settle(ticket, callTokens, call.costUsd);
    const spentShared = settled instanceof Promise ? await settled : settled;
    if (result.toolCalls.length === 0) {
      // The answer is in: a budget reached by this last call does not take it back.
      persistSession(task, produced, deps.store);
      if (agent.extraction !== undefined && deps.memory !== undefined) {
        await extractFacts(task, agent.extraction, agent.name, chain, produced, {
          router: deps.router,
          memory: deps.memory,
          admission: deps.admission,
        });
      }
      return result.content ?? '';
    }
    const spent =
      spentBudget(limits, record, session) ??
      (spentShared === undefined ? undefined : sharedBudgetError(spentShared));
    if (spent !== undefined) throw new PartialStop(spent, lastText);
    if (tier !== undefined && nearingBudget(limits, record)) {
      const cheaper = cheaperTier(tier);
      if (cheaper !== undefined) {
        tier = cheaper;
        chain = stepDown(deps.router, cheaper, chain);
        task.events.append('llm.stepped_down', { tier: cheaper, reason: 'budget' });
      }
    }

    if (toolContext === undefined) {
      const toolSpans = new Map<string, Span>();
      toolContext = {
        allowed,
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
          const span = deps.tracing.startChild(task.span, 'tool.call', {
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
    }
    const started = performance.now();
    const outcomes = await deps.tools.run(result.toolCalls, toolContext);
    task.toolMs += performance.now() - started;
    record.tool_calls += outcomes.length;
    for (const outcome of outcomes) {
      const message: ChatMessage = { role: 'tool', tool_call_id: outcome.id, content: outcome.content };
      messages.push(message);
      produced.push(message);
    }
  }
  throw new PartialStop(
    new MaxIterationsError(`agent "${agent.name}" did not finish within ${limits.maxIterations} iterations`, {
      details: { limit: 'max_iterations', max_iterations: limits.maxIterations },
    }),
    lastText,
  );
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
