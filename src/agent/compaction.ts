import type { AdmissionController } from '../admission/index.js';
import type { CompactionConfig } from '../config/index.js';
import { toAgentdError } from '../errors.js';
import { estimateTokens } from '../lib/tokens.js';
import type { ChatMessage, ModelRoute, ModelRouter } from '../llm/index.js';
import { type SessionRecord, type Store, type StoredMessage, summaryMessage } from '../store/index.js';
import type { Task } from './task.js';

/** Messages read per page when collecting what to summarise. */
const PAGE = 1000;

/** Compactions running in this process, per store and session: concurrent tasks share one. */
const running = new WeakMap<Store, Map<string, Promise<void>>>();

export interface CompactionDeps {
  router: ModelRouter;
  store: Store;
  admission: AdmissionController;
}

/**
 * Summarises a session's older turns when the part after its last summary passes `threshold` of
 * the model's context window. The summary is stored as a message and the window starts from it;
 * the originals stay stored. Tasks of one session that start together share one compaction here,
 * and the store refuses a summary computed from a state another node already compacted.
 * Emits `session.compacted` (or `session.compaction_failed`, which does not fail the task).
 */
export async function compactSession(
  task: Task,
  settings: CompactionConfig,
  chain: ModelRoute[],
  deps: CompactionDeps,
): Promise<void> {
  const sessionId = task.record.session_id;
  if (sessionId === null) return;
  const session = await deps.store.getSession(sessionId);
  if (session === undefined) return;
  const summariser =
    settings.model === undefined ? chain : deps.router.resolve({ model: settings.model }, undefined);
  const contextWindow = chain[0]?.contextWindow ?? settings.context_window;
  if (session.window_tokens + session.summary_tokens <= settings.threshold * contextWindow) return;
  let sessions = running.get(deps.store);
  if (sessions === undefined) {
    sessions = new Map();
    running.set(deps.store, sessions);
  }
  const pending = sessions.get(sessionId);
  if (pending !== undefined) {
    await pending;
    return;
  }
  const work = summarise(task, settings, session, summariser, contextWindow, deps);
  sessions.set(sessionId, work);
  try {
    await work;
  } finally {
    sessions.delete(sessionId);
  }
}

async function summarise(
  task: Task,
  settings: CompactionConfig,
  session: SessionRecord,
  chain: ModelRoute[],
  contextWindow: number,
  deps: CompactionDeps,
): Promise<void> {
  const record = task.record;
  const messages = await messagesAfter(deps.store, session.id, session.summary_through);
  // Keep up to `keep_messages` of the newest verbatim, within half the trigger so that the next
  // task does not compact again at once; never split a tool call from its results.
  const keepTokens = (settings.threshold * contextWindow) / 2;
  let cut = messages.length;
  let kept = 0;
  while (cut > 0 && messages.length - cut < settings.keep_messages) {
    const tokens = messages[cut - 1]!.tokens;
    if (kept + tokens > keepTokens) break;
    kept += tokens;
    cut--;
  }
  while (cut > 0 && cut < messages.length && messages[cut]!.message.role === 'tool') cut--;
  if (cut <= 0) return;
  // Summarise at most half the context window at once, so the request fits the model: a session
  // that grew long before compaction was enabled is caught up over several tasks.
  let end = 0;
  let tokens = 0;
  while (end < cut && tokens + messages[end]!.tokens <= contextWindow / 2) tokens += messages[end++]!.tokens;
  while (end > 0 && end < cut && messages[end]!.message.role === 'tool') end--;
  const older = messages.slice(0, end === 0 ? cut : end);
  const through = older[older.length - 1]!.seq;
  try {
    const call = await deps.router.chat(
      chain,
      {
        messages: [
          { role: 'system', content: settings.prompt },
          { role: 'user', content: transcript(session.summary, older) },
        ],
        maxTokens: settings.max_summary_tokens,
        temperature: 0,
      },
      { cancellation: task.cancellation },
    );
    const usage = call.result.usage;
    record.usage.input_tokens += usage.input_tokens;
    record.usage.output_tokens += usage.output_tokens;
    record.cost_usd += call.costUsd;
    // Charged to the task's rate limits and budgets like any of its calls.
    if (task.ticket !== undefined)
      await deps.admission.settle(task.ticket, usage.input_tokens + usage.output_tokens, call.costUsd);
    const content = (call.result.content ?? '').trim();
    if (content === '') throw new Error('the model returned an empty summary');
    const tokens = estimateTokens(summaryMessage(content).content) + 4;
    const saved = await deps.store.saveSummary(session.id, {
      expectedThrough: session.summary_through,
      through,
      content,
      tokens,
      task_id: record.id,
    });
    task.events.append('session.compacted', {
      session_id: session.id,
      applied: saved,
      summarised_through: through,
      summarised_messages: older.length,
      tokens_before: session.window_tokens + session.summary_tokens,
      summary_tokens: tokens,
      context_window: contextWindow,
      model: call.model,
      usage,
      cost_usd: call.costUsd,
    });
  } catch (err) {
    if (task.cancellation.signal.aborted) throw err;
    const error = toAgentdError(err);
    task.events.append('session.compaction_failed', {
      session_id: session.id,
      code: error.code,
      message: error.message,
    });
  }
}

/** The session's messages after its summary (summaries excluded), oldest first. */
async function messagesAfter(store: Store, sessionId: string, afterSeq: number): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  let cursor = afterSeq;
  for (;;) {
    const page = await store.listMessages(sessionId, cursor, PAGE);
    for (const item of page.items) if (item.kind === 'message') out.push(item);
    if (page.next_cursor === null) return out;
    cursor = Number(page.next_cursor);
  }
}

/** The conversation as the summariser reads it: the earlier summary, then one line per message. */
function transcript(previous: string | null, messages: readonly StoredMessage[]): string {
  const lines: string[] = [];
  if (previous !== null) lines.push(`Earlier summary:\n${previous}\n`, 'Conversation since:');
  for (const { message } of messages) lines.push(line(message));
  return lines.join('\n');
}

function line(message: ChatMessage): string {
  if (message.role === 'tool') return `tool result: ${message.content ?? ''}`;
  let text = `${message.role}: ${message.content ?? ''}`;
  if (message.tool_calls !== undefined) {
    for (const call of message.tool_calls)
      text += `\n  (called ${call.function.name} ${call.function.arguments})`;
  }
  return text;
}
