import type { AgentMemoryConfig } from '../config/index.js';
import { estimateTokens } from '../lib/tokens.js';
import type { Span } from '../observability/index.js';
import type { LongTermMemory } from './long-term-memory.js';
import type { MemoryFilter } from './types.js';

/** Who a task is, for choosing whose memories it recalls. */
export interface RecallSubject {
  tenantId: string;
  userId: string | null;
  agent: string;
}

export interface Recalled {
  /** The context block to give the model (undefined when nothing was recalled). */
  content: string | undefined;
  memories: { id: string; score: number; tokens: number }[];
  tokens: number;
}

/**
 * The top memories for an input, as one context block that fits `max_tokens`: memories are taken
 * best first and one that does not fit is skipped (a shorter one after it may still fit).
 */
export async function recallForInput(
  memory: LongTermMemory,
  options: AgentMemoryConfig,
  subject: RecallSubject,
  input: string,
  signal?: AbortSignal,
  parent?: Span,
): Promise<Recalled> {
  const filter: MemoryFilter = {};
  if (options.scope === 'user') {
    // A task without a user recalls nothing personal rather than every user's memories.
    if (subject.userId === null) return { content: undefined, memories: [], tokens: 0 };
    filter.user_id = subject.userId;
  } else if (options.scope === 'agent') {
    filter.agent_id = subject.agent;
  }
  const result = await memory.search(
    {
      tenant_id: subject.tenantId,
      text: input,
      mode: options.mode,
      filter,
      top_k: options.top_k,
      min_score: options.min_score,
    },
    signal,
    parent,
  );
  const header = 'Relevant memories (most relevant first):';
  let tokens = estimateTokens(header);
  const lines: string[] = [header];
  const memories: Recalled['memories'] = [];
  for (const hit of result.hits) {
    const line = `- ${hit.memory.text} (${new Date(hit.memory.created_at).toISOString().slice(0, 10)})`;
    const cost = estimateTokens(line) + 1;
    if (tokens + cost > options.max_tokens) continue;
    tokens += cost;
    lines.push(line);
    memories.push({ id: hit.memory.id, score: hit.score, tokens: cost });
  }
  if (memories.length === 0) return { content: undefined, memories, tokens: 0 };
  return { content: lines.join('\n'), memories, tokens };
}
