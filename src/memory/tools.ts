import Type from 'typebox';
import { defineTool, type ToolContext, type ToolDefinition } from '../tools/index.js';
import type { LongTermMemory } from './long-term-memory.js';
import type { MemoryFilter } from './types.js';

/** The memories a tool call may see: its user's when the task has one, else the tenant's. */
function scopeFilter(ctx: ToolContext): MemoryFilter {
  return ctx.userId ? { user_id: ctx.userId } : {};
}

const normalise = (text: string) => text.trim().replace(/\s+/g, ' ').toLowerCase();

/**
 * `remember` (store a fact) and `recall` (search memories) for the model. Both act within the
 * task's tenant and, when the task has a user, that user's memories. Remembering a fact that is
 * already stored returns the stored one instead of adding a duplicate.
 */
export function createMemoryTools(memory: LongTermMemory): ToolDefinition<never, unknown>[] {
  const remember = defineTool({
    name: 'remember',
    description:
      'Store a fact worth remembering in long-term memory (about the user, their preferences, decisions, events). One fact per call, as a self-contained sentence.',
    parameters: Type.Object({
      text: Type.String({ minLength: 1, maxLength: memory.limits.maxTextChars, description: 'the fact' }),
      tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 16 })),
      importance: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    }),
    handler: async ({ text, tags, importance }, ctx) => {
      const existing = await memory.search(
        { tenant_id: ctx.tenantId, text, mode: 'exact', filter: scopeFilter(ctx), top_k: 5 },
        ctx.signal,
      );
      const duplicate = existing.hits.find((hit) => normalise(hit.memory.text) === normalise(text));
      if (duplicate !== undefined) return { id: duplicate.memory.id, stored: false, duplicate: true };
      const [added] = await memory.add(
        { tenant_id: ctx.tenantId, user_id: ctx.userId ?? null, agent_id: ctx.agent },
        [{ text, tags, importance, metadata: { source: 'remember', task_id: ctx.taskId } }],
        ctx.signal,
      );
      return { id: added!.id, stored: true };
    },
  });
  const recall = defineTool({
    name: 'recall',
    description: 'Search long-term memory for facts relevant to a query; returns the best matches.',
    parameters: Type.Object({
      query: Type.String({ minLength: 1, maxLength: 4000 }),
      top_k: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })),
    }),
    handler: async ({ query, top_k }, ctx) => {
      const result = await memory.search(
        { tenant_id: ctx.tenantId, text: query, filter: scopeFilter(ctx), top_k: top_k ?? 5 },
        ctx.signal,
      );
      return result.hits.map((hit) => ({
        id: hit.memory.id,
        text: hit.memory.text,
        score: Number(hit.score.toFixed(4)),
        created_at: new Date(hit.memory.created_at).toISOString(),
      }));
    },
  });
  return [remember, recall] as unknown as ToolDefinition<never, unknown>[];
}
