import {
  type AgentdError,
  BudgetExhaustedError,
  CancelledError,
  MaxIterationsError,
  TimeoutError,
  toAgentdError,
} from '../errors.js';
import { coarseTimer } from '../lib/coarse-timer.js';
import { estimateTokens } from '../lib/tokens.js';
import type { CallContext, ChatMessage, ChatRequest, ModelRouter, ModelSelector } from '../llm/index.js';
import type { NewMessage, Store } from '../store/index.js';
import type { ToolCallOutcome, ToolExecutor, ToolRegistry, ToolRunContext } from '../tools/index.js';
import type { Agent } from './agent.js';
import type { Task } from './task.js';

export interface LoopDeps {
  router: ModelRouter;
  tools: ToolExecutor;
  registry: ToolRegistry;
  store: Store;
}

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
 * Runs one task to a terminal state. Never throws: every outcome (success, failure, timeout,
 * cancellation) ends in `task.finish` and is persisted.
 */
export async function runTask(task: Task, agent: Agent, deps: LoopDeps): Promise<void> {
  const record = task.record;
  task.markRunning();
  deps.store.updateTask(record);
  const timeoutMs = record.options.timeout_ms ?? agent.timeoutMs;
  const timer = coarseTimer.schedule(timeoutMs, abortOnTimeout, { task, timeoutMs });
  try {
    const answer = await converse(task, agent, deps);
    task.finish('succeeded', answer, null);
  } catch (err) {
    if (err instanceof PartialStop) {
      record.partial = err.partial !== null;
      task.finish('failed', err.partial, err.error.toBody());
    } else {
      const error = toAgentdError(err);
      task.finish(error.code === CancelledError.code ? 'cancelled' : 'failed', null, error.toBody());
    }
  } finally {
    coarseTimer.cancel(timer);
    deps.store.updateTask(record);
  }
}

async function converse(task: Task, agent: Agent, deps: LoopDeps): Promise<string> {
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
  const chain = deps.router.resolve(selector, agent.model);

  const messages: ChatMessage[] = [{ role: 'system', content: agent.systemPrompt }];
  if (record.session_id !== null) {
    const window = await deps.store.sessionWindow(
      record.session_id,
      agent.windowMessages,
      agent.windowTokens,
    );
    for (const message of window) messages.push(message);
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
  if (agent.maxOutputTokens !== undefined) request.maxTokens = agent.maxOutputTokens;
  const callContext: CallContext = { cancellation: task.cancellation, sink: task };

  for (let iteration = 1; iteration <= agent.maxIterations; iteration++) {
    record.iterations = iteration;
    task.events.append('llm.started', { iteration });
    const call = await deps.router.chat(chain, request, callContext);
    const result = call.result;
    task.providerMs += call.durationMs;
    record.usage.input_tokens += result.usage.input_tokens;
    record.usage.output_tokens += result.usage.output_tokens;
    record.cost_usd += call.costUsd;
    record.model = call.model;
    task.events.append('llm.completed', {
      iteration,
      model: call.model,
      finish_reason: result.finishReason,
      usage: result.usage,
      cost_usd: call.costUsd,
      ...(call.failedAttempts.length > 0 ? { failed_attempts: call.failedAttempts } : {}),
    });

    const assistant: ChatMessage = { role: 'assistant', content: result.content };
    if (result.toolCalls.length > 0) assistant.tool_calls = result.toolCalls;
    messages.push(assistant);
    produced.push(assistant);
    if (result.content !== null && result.content !== '') lastText = result.content;

    if (result.toolCalls.length === 0) {
      persistSession(task, produced, deps.store);
      return result.content ?? '';
    }
    const used = record.usage.input_tokens + record.usage.output_tokens;
    if (agent.tokenBudget !== undefined && used >= agent.tokenBudget) {
      throw new PartialStop(
        new BudgetExhaustedError(`task used ${used} of its ${agent.tokenBudget}-token budget`, {
          details: { limit: 'token_budget', used, budget: agent.tokenBudget },
        }),
        lastText,
      );
    }
    toolContext ??= {
      allowed,
      cancellation: task.cancellation,
      taskId: record.id,
      tenantId: record.tenant_id,
      agent: agent.name,
      timeoutMs: agent.toolTimeoutMs,
      maxParallel: agent.maxParallelTools,
      onStart: (toolCall) =>
        task.events.append('tool.started', {
          id: toolCall.id,
          name: toolCall.function.name,
          arguments: toolCall.function.arguments,
        }),
      onEnd: (outcome) => task.events.append('tool.completed', toolEventData(outcome)),
    };
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
    new MaxIterationsError(`agent "${agent.name}" did not finish within ${agent.maxIterations} iterations`, {
      details: { limit: 'max_iterations', max_iterations: agent.maxIterations },
    }),
    lastText,
  );
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

function abortOnTimeout(state: { task: Task; timeoutMs: number }): void {
  state.task.cancellation.abortWith(
    new TimeoutError(`task did not finish within ${state.timeoutMs} ms`, {
      details: { limit: 'timeout_ms', timeout_ms: state.timeoutMs },
    }),
  );
}
