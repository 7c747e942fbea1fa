/**
 * Mastra (`@mastra/memory` 0.15, the newest line for `@mastra/core` 0.24 and Node 20): `Memory`
 * with `LibSQLStore` and `LibSQLVector` (`@mastra/libsql`) on a file in the scratch directory, the
 * embedder an AI SDK model from `@ai-sdk/openai-compatible` at the mock. Memories are user
 * messages of one thread per user, saved with `saveMessages` (each message embedded and upserted
 * into the vector index: semantic recall); search is `rememberMessages` with semantic recall over
 * the user (`scope: 'resource'`), `messageRange: 0` and `lastMessages: false` so that only the
 * `topK` matches come back. Mastra returns them in conversation order, not by score, so only
 * recall at exactly `k` is meaningful for it.
 */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import type { MastraMessageV2 } from '@mastra/core/agent';
import type { MemoryConfig } from '@mastra/core/memory';
import { LibSQLStore, LibSQLVector } from '@mastra/libsql';
import { Memory } from '@mastra/memory';
import type { MemoryItem, MemorySubject, MemorySubjectContext } from '../subject.js';

export async function create(context: MemorySubjectContext): Promise<MemorySubject> {
  const provider = createOpenAICompatible({ name: 'mock', baseURL: context.baseURL, apiKey: 'bench' });
  const url = `file:${context.dir}/mastra.db`;
  const recall = (k: number): MemoryConfig => ({
    lastMessages: false,
    semanticRecall: { topK: k, messageRange: 0, scope: 'resource' },
  });
  const memory = new Memory({
    storage: new LibSQLStore({ url }),
    vector: new LibSQLVector({ connectionUrl: url }),
    embedder: provider.textEmbeddingModel(context.model),
    options: recall(10),
  });
  const threads = new Set<string>();
  let clock = Date.UTC(2024, 0, 1);
  return {
    modes: ['semantic recall'],
    async add(user: string, items: readonly MemoryItem[]): Promise<void> {
      const threadId = `thread-${user}`;
      if (!threads.has(threadId)) {
        await memory.createThread({ threadId, resourceId: user, title: user });
        threads.add(threadId);
      }
      const messages: MastraMessageV2[] = items.map((item) => ({
        id: item.ref,
        role: 'user',
        createdAt: new Date(clock++),
        threadId,
        resourceId: user,
        type: 'v2',
        content: { format: 2, parts: [{ type: 'text', text: item.text }], content: item.text },
      }));
      await memory.saveMessages({ messages, memoryConfig: recall(10), format: 'v2' });
    },
    async search(user: string, query: string, k: number): Promise<string[]> {
      const { messagesV2 } = await memory.rememberMessages({
        threadId: `thread-${user}`,
        resourceId: user,
        vectorMessageSearch: query,
        config: recall(k),
      });
      return messagesV2.map((message) => message.id);
    },
    async close(): Promise<void> {},
  };
}
