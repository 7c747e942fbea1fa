/**
 * agentd: `LongTermMemory` as a library, SQLite storage in a file, the OpenAI-compatible
 * embedder pointed at the mock (so its vectors are the peers' vectors), production defaults for
 * the vector index. `semantic` and `hybrid` (BM25 via FTS5 fused with semantic) modes.
 */
import {
  LongTermMemory,
  memoryIndexPath,
  OpenAiEmbedder,
  type SearchMode,
  SqliteMemoryStorage,
} from '../../../src/memory/index.js';
import type { MemoryItem, MemorySubject, MemorySubjectContext } from '../subject.js';

const TENANT = 'bench';

export async function create(context: MemorySubjectContext): Promise<MemorySubject> {
  const path = `${context.dir}/agentd-memory.db`;
  const memory = await LongTermMemory.open({
    storage: new SqliteMemoryStorage({ path }),
    embedder: new OpenAiEmbedder({
      baseUrl: context.baseURL,
      apiKey: 'bench',
      model: context.model,
      dimensions: context.dimensions,
      // The LoCoMo phase asks every question once per mode: a one-entry cache keeps the second
      // mode from being answered by the query-vector cache, so every search embeds its query like
      // mem0's does (Mastra's cache is per message text and it has one mode).
      cacheEntries: 1,
    }),
    indexPath: memoryIndexPath(path),
  });
  return {
    modes: ['semantic', 'hybrid'],
    async add(user: string, items: readonly MemoryItem[]): Promise<void> {
      await memory.add(
        { tenant_id: TENANT, user_id: user },
        items.map((item) => ({ text: item.text, metadata: { ref: item.ref } })),
      );
    },
    async search(user: string, query: string, k: number, mode: string): Promise<string[]> {
      const result = await memory.search({
        tenant_id: TENANT,
        text: query,
        mode: mode as SearchMode,
        filter: { user_id: user },
        top_k: k,
      });
      return result.hits.map((hit) => hit.memory.metadata.ref as string);
    },
    close: () => memory.close(),
  };
}
