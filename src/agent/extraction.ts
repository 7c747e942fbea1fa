import type { AdmissionController } from '../admission/index.js';
import type { ExtractionConfig } from '../config/index.js';
import { toAgentdError } from '../errors.js';
import type { ChatMessage, ModelRoute, ModelRouter } from '../llm/index.js';
import {
  type LongTermMemory,
  type MemoryScope,
  parseFacts,
  rememberFacts,
  scopeFilter,
} from '../memory/index.js';
import type { Task } from './task.js';

export interface ExtractionDeps {
  router: ModelRouter;
  memory: LongTermMemory;
  admission: AdmissionController;
}

/**
 * After a task's answer, asks the model for facts worth remembering and stores them in the task's
 * scope: duplicates merge into the stored memory, and a fact naming a shown memory it supersedes
 * replaces that memory's text (its history keeps the old one). Emits `memory.extracted`, or
 * `memory.extraction_failed`; never throws, so the task keeps its answer.
 */
export async function extractFacts(
  task: Task,
  settings: ExtractionConfig,
  agentName: string,
  chain: ModelRoute[],
  exchange: readonly ChatMessage[],
  deps: ExtractionDeps,
): Promise<void> {
  const record = task.record;
  const scope: MemoryScope = { tenant_id: record.tenant_id };
  if (settings.scope === 'user') {
    // Like recall: a task without a user has no personal memory to write to.
    if (record.user_id === null) {
      task.events.append('memory.extracted', {
        facts: 0,
        added: [],
        merged: [],
        superseded: [],
        skipped: 'no user',
      });
      return;
    }
    scope.user_id = record.user_id;
  } else if (settings.scope === 'agent') {
    scope.agent_id = agentName;
  }
  const signal = task.cancellation.signal;
  try {
    const conversation = exchange
      .filter((message) => (message.role === 'user' || message.role === 'assistant') && message.content)
      .map((message) => `${message.role}: ${message.content}`)
      .join('\n');
    const related =
      settings.related === 0
        ? []
        : (
            await deps.memory.search(
              {
                tenant_id: scope.tenant_id,
                text: conversation.slice(0, 4000),
                mode: 'hybrid',
                filter: scopeFilter(scope),
                top_k: settings.related,
              },
              signal,
            )
          ).hits.map((hit) => hit.memory);
    let system = settings.prompt;
    if (related.length > 0)
      system += `\n\nKnown memories:\n${related.map((memory) => `- [${memory.id}] ${memory.text}`).join('\n')}`;
    const route =
      settings.model === undefined ? chain : deps.router.resolve({ model: settings.model }, undefined);
    const call = await deps.router.chat(
      route,
      {
        messages: [
          { role: 'system', content: system },
          { role: 'user', content: conversation },
        ],
        temperature: 0,
      },
      { cancellation: task.cancellation },
    );
    record.usage.input_tokens += call.result.usage.input_tokens;
    record.usage.output_tokens += call.result.usage.output_tokens;
    record.cost_usd += call.costUsd;
    const usage = call.result.usage;
    if (task.ticket !== undefined)
      await deps.admission.settle(task.ticket, usage.input_tokens + usage.output_tokens, call.costUsd);
    const facts = parseFacts(call.result.content ?? '', settings.max_facts, deps.memory.limits.maxTextChars);
    const stored = await rememberFacts(
      deps.memory,
      scope,
      facts,
      new Set(related.map((memory) => memory.id)),
      { duplicateSimilarity: settings.duplicate_similarity },
      { source: 'extraction', task_id: record.id, session_id: record.session_id },
      signal,
    );
    task.events.append('memory.extracted', {
      facts: facts.length,
      ...stored,
      model: call.model,
      usage: call.result.usage,
      cost_usd: call.costUsd,
    });
  } catch (err) {
    // The answer is in: not even a timeout or cancellation during extraction takes it back.
    const error = toAgentdError(signal.aborted ? (signal.reason ?? err) : err);
    task.events.append('memory.extraction_failed', { code: error.code, message: error.message });
  }
}
