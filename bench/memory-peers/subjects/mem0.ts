/**
 * mem0 (open-source mode, `mem0ai/oss`): `Memory` with its local `memory` vector store (a SQLite
 * file of vectors and JSON payloads) and its SQLite history, both in the scratch directory; the
 * `openai` embedder and LLM with `baseURL` at the mock. Adds pass `infer: false`, which stores each
 * message as a memory verbatim (the default, `infer: true`, asks the LLM to extract facts first:
 * not comparable with the raw adds of the others). `search` is mem0's one search: semantic
 * candidates re-scored with its BM25 keyword score and entity boosts; `threshold: 0` so that it
 * returns `k` results like the others (its default, 0.1, may return fewer).
 */
import { Memory } from 'mem0ai/oss';
import type { MemoryItem, MemorySubject, MemorySubjectContext } from '../subject.js';

export async function create(context: MemorySubjectContext): Promise<MemorySubject> {
  const openai = { apiKey: 'bench', baseURL: context.baseURL, model: context.model };
  const memory = new Memory({
    embedder: { provider: 'openai', config: openai },
    vectorStore: {
      provider: 'memory',
      config: {
        collectionName: 'bench',
        dimension: context.dimensions,
        dbPath: `${context.dir}/mem0-vectors.db`,
      },
    },
    llm: { provider: 'openai', config: openai },
    historyStore: { provider: 'sqlite', config: { historyDbPath: `${context.dir}/mem0-history.db` } },
  });
  /** mem0 returns the stored text, not per-message metadata (an add's metadata is per call): texts are unique. */
  const refs = new Map<string, string>();
  return {
    modes: ['search'],
    async add(user: string, items: readonly MemoryItem[]): Promise<void> {
      for (const item of items) refs.set(item.text, item.ref);
      await memory.add(
        items.map((item) => ({ role: 'user', content: item.text })),
        { userId: user, infer: false },
      );
    },
    async search(user: string, query: string, k: number): Promise<string[]> {
      const result = await memory.search(query, { filters: { user_id: user }, topK: k, threshold: 0 });
      return result.results.map((hit) => refs.get(hit.memory) ?? '');
    },
    async close(): Promise<void> {},
  };
}
