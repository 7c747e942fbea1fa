import type { Identity } from '../admission/index.js';
import type { TaskEvent } from '../agent/index.js';
import { AgentdError, InvalidRequestError, statusOf } from '../errors.js';
import type { Runtime } from '../runtime/index.js';
import type { TaskRecord } from '../store/index.js';
import type { CompletionOutput } from './output.js';
import { agentInput, type ChatCompletionBody, wantsUsage } from './request.js';
import { ChunkWriter, completionJson, DONE_FRAME, errorFrame } from './wire.js';

/** `model` values that select agent mode: `agent:<name>`. */
export const AGENT_MODEL_PREFIX = 'agent:';

const SESSION_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** One agent-mode completion. */
export interface AgentChatCall {
  identity: Identity;
  body: ChatCompletionBody;
  /** From the session header; else derived from `user`. */
  sessionId: string | undefined;
  output: CompletionOutput;
  traceparent: string | undefined;
  /** Registers what to do when the client hangs up. */
  onHangUp(listener: () => void): void;
}

/** What a tool did during an agent-mode completion (the `agentd.tool_calls` extra field). */
interface ToolActivity {
  id: unknown;
  name: unknown;
  arguments: unknown;
  ok?: unknown;
  result?: unknown;
  error?: unknown;
  duration_ms?: unknown;
}

/**
 * Agent mode of the OpenAI-compatible API: `model: "agent:<name>"` runs that agent's loop (its
 * tools, memory and limits) as a task and answers with its final text as an ordinary completion.
 * Tool activity is an extra `agentd` field of the completion, or SSE comment lines in a stream
 * (which OpenAI clients ignore). `user`, or the `x-agentd-session-id` header, names the session.
 */
export class AgentChat {
  readonly #runtime: Runtime;

  constructor(runtime: Runtime) {
    this.#runtime = runtime;
  }

  async complete(call: AgentChatCall): Promise<void> {
    const { body, output } = call;
    const name = body.model.slice(AGENT_MODEL_PREFIX.length);
    const sessionId = call.sessionId ?? sessionOfUser(body.user);
    if (sessionId !== undefined && !SESSION_ID.test(sessionId)) {
      throw new InvalidRequestError('the session id must be 1-128 characters of A-Z a-z 0-9 _ . : -', {
        details: { field: 'headers.x-agentd-session-id' },
      });
    }
    const { task } = await this.#runtime.submit({
      agent: name,
      input: agentInput(body.messages, sessionId !== undefined),
      identity: call.identity,
      sessionId,
      traceparent: call.traceparent,
      metadata:
        typeof body.metadata === 'object' && body.metadata !== null
          ? (body.metadata as Record<string, unknown>)
          : undefined,
    });
    const tenant = call.identity.tenantId;
    call.onHangUp(() => {
      if (!task.finished) void this.#runtime.cancel(task.id, tenant);
    });
    output.header('x-agentd-task-id', task.id);
    if (sessionId !== undefined) output.header('x-agentd-session-id', sessionId);
    const id = `chatcmpl-${task.id.replaceAll('-', '')}`;
    const created = Math.floor(task.record.created_at / 1000);
    if (body.stream === true) {
      await streamTask(
        task.events.subscribe.bind(task.events),
        output,
        new ChunkWriter(id, created, body.model),
        wantsUsage(body),
      );
      return;
    }
    const tools: ToolActivity[] = [];
    const subscription = task.events.subscribe(0, (event) => collectTool(tools, event));
    for (const event of subscription.backlog) collectTool(tools, event);
    await task.wait();
    subscription.unsubscribe();
    const record = task.record;
    if (record.status !== 'succeeded') throw storedError(record);
    const completion = completionJson(id, created, body.model, record.result, [], 'stop', record.usage);
    completion.agentd = {
      task_id: record.id,
      session_id: record.session_id,
      model: record.model,
      iterations: record.iterations,
      cost_usd: record.cost_usd,
      tool_calls: tools,
    };
    output.json(JSON.stringify(completion));
  }
}

/** `user` maps to one session per user, so a chat UI that only sends `user` keeps its history. */
function sessionOfUser(user: string | undefined): string | undefined {
  if (user === undefined || user === '') return undefined;
  return `user:${user.replace(/[^A-Za-z0-9_.:-]/g, '_')}`.slice(0, 128);
}

function collectTool(tools: ToolActivity[], event: TaskEvent): void {
  const data = event.data;
  if (event.type === 'tool.started') {
    tools.push({ id: data.id, name: data.name, arguments: data.arguments });
  } else if (event.type === 'tool.completed') {
    const entry = tools.find((tool) => tool.id === data.id);
    if (entry === undefined) return;
    entry.ok = data.ok;
    if (data.ok === true) entry.result = data.result;
    else entry.error = data.error;
    entry.duration_ms = data.duration_ms;
  }
}

/** A failed task's stored error as a throwable error with the same code and status. */
function storedError(record: TaskRecord): AgentdError {
  const body = record.error ?? { code: 'AGENTD_INTERNAL', message: 'the task failed', retryable: false };
  return new AgentdError(body.code, statusOf(body.code), body.retryable, body.message, {
    retryAfterMs: body.retry_after_ms,
    details: body.details,
  });
}

type Subscribe = (
  afterSeq: number,
  listener: (event: TaskEvent) => void,
) => { backlog: TaskEvent[]; unsubscribe(): void };

/** Streams a task as completion chunks: text deltas as content, tool activity as SSE comments. */
function streamTask(
  subscribe: Subscribe,
  output: CompletionOutput,
  writer: ChunkWriter,
  includeUsage: boolean,
): Promise<void> {
  return new Promise((resolve) => {
    output.write(writer.role());
    let done = false;
    const onEvent = (event: TaskEvent): void => {
      if (done) return;
      const data = event.data;
      switch (event.type) {
        case 'llm.delta':
          output.write(writer.text(data.text as string));
          return;
        case 'tool.started':
        case 'tool.completed':
        case 'llm.discarded':
          output.write(`: ${event.type} ${JSON.stringify(data)}\n\n`);
          return;
        case 'task.completed': {
          done = true;
          if (data.status === 'succeeded') {
            output.write(writer.finish('stop'));
            if (includeUsage) output.write(writer.usage(data.usage as TaskRecord['usage']));
            output.write(DONE_FRAME);
          } else {
            output.write(errorFrame(data.error as NonNullable<TaskRecord['error']>));
          }
          output.end();
          subscription?.unsubscribe();
          resolve();
          return;
        }
        default:
          return;
      }
    };
    let subscription: { unsubscribe(): void } | undefined;
    const opened = subscribe(0, onEvent);
    subscription = opened;
    for (const event of opened.backlog) onEvent(event);
    if (done) opened.unsubscribe();
  });
}
