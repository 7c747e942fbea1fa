import { type AgentdError, InvalidRequestError } from '../errors.js';
import type { LongTermMemory } from './long-term-memory.js';
import type { MemoryFilter, MemoryRecord, MemoryScope } from './types.js';

/** One fact a model extracted from a conversation. */
export interface ExtractedFact {
  text: string;
  /** The id of a stored memory this fact replaces. */
  supersedes?: string | undefined;
  importance?: number | undefined;
  tags?: string[] | undefined;
}

/** How extracted facts are stored. */
export interface FactPolicy {
  /** Cosine similarity from which a fact is the same as a stored memory (merged, not added). */
  duplicateSimilarity: number;
}

/** What storing a batch of facts did. */
export interface RememberedFacts {
  added: string[];
  /** Facts already stored: the memory they merged into. */
  merged: string[];
  /** Memories whose text a newer fact replaced (their history keeps the old text). */
  superseded: string[];
}

const normalise = (text: string): string => text.trim().replace(/\s+/g, ' ').toLowerCase();

/**
 * Parses a model's extraction answer: JSON `{"facts": [...]}` (a Markdown code fence around it is
 * tolerated). Anything else is an error naming what is wrong; at most `maxFacts` are kept.
 */
export function parseFacts(answer: string, maxFacts: number, maxTextChars: number): ExtractedFact[] {
  const fenced = /^\s*```(?:json)?\s*([\s\S]*?)\s*```\s*$/.exec(answer);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fenced === null ? answer : fenced[1]!);
  } catch {
    throw invalid('the extraction answer is not JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || !Array.isArray((parsed as { facts?: unknown }).facts))
    throw invalid('the extraction answer has no `facts` array');
  const facts: ExtractedFact[] = [];
  for (const [i, item] of (parsed as { facts: unknown[] }).facts.entries()) {
    if (facts.length === maxFacts) break;
    const at = `facts[${i}]`;
    if (item === null || typeof item !== 'object') throw invalid(`${at} is not an object`);
    const { text, supersedes, importance, tags } = item as Record<string, unknown>;
    if (typeof text !== 'string' || text.trim() === '' || text.length > maxTextChars)
      throw invalid(`${at}.text must be a non-empty string of at most ${maxTextChars} characters`);
    if (supersedes !== undefined && supersedes !== null && typeof supersedes !== 'string')
      throw invalid(`${at}.supersedes must be a memory id`);
    if (importance !== undefined && (typeof importance !== 'number' || importance < 0 || importance > 1))
      throw invalid(`${at}.importance must be a number from 0 to 1`);
    if (
      tags !== undefined &&
      (!Array.isArray(tags) ||
        tags.length > 16 ||
        tags.some((tag) => typeof tag !== 'string' || tag === '' || tag.length > 128))
    )
      throw invalid(`${at}.tags must be at most 16 strings`);
    facts.push({
      text: text.trim(),
      supersedes: typeof supersedes === 'string' ? supersedes : undefined,
      importance: importance as number | undefined,
      tags: tags as string[] | undefined,
    });
  }
  return facts;
}

function invalid(message: string): AgentdError {
  return new InvalidRequestError(message, { details: { field: 'facts' } });
}

/** The memories of a scope as a search filter. */
export function scopeFilter(scope: MemoryScope): MemoryFilter {
  const filter: MemoryFilter = {};
  if (scope.user_id != null) filter.user_id = scope.user_id;
  if (scope.agent_id != null) filter.agent_id = scope.agent_id;
  return filter;
}

/**
 * Stores extracted facts in a scope. A fact naming a memory it `supersedes` (one of `supersedable`,
 * the memories shown to the model) updates that memory's text, which its history records. A fact
 * equal to a stored memory (same text, or cosine similarity from `duplicateSimilarity`) or to an
 * earlier fact of the batch is merged: tags are joined and the higher importance kept, nothing is
 * added. Everything else is added in one batch.
 */
export async function rememberFacts(
  memory: LongTermMemory,
  scope: MemoryScope,
  facts: readonly ExtractedFact[],
  supersedable: ReadonlySet<string>,
  policy: FactPolicy,
  metadata: Record<string, unknown>,
  signal?: AbortSignal,
): Promise<RememberedFacts> {
  const result: RememberedFacts = { added: [], merged: [], superseded: [] };
  const filter = scopeFilter(scope);
  const seen = new Set<string>();
  const fresh: ExtractedFact[] = [];
  for (const fact of facts) {
    const key = normalise(fact.text);
    if (seen.has(key)) continue;
    seen.add(key);
    if (fact.supersedes !== undefined && supersedable.has(fact.supersedes)) {
      const updated = await memory.update(
        scope.tenant_id,
        fact.supersedes,
        {
          text: fact.text,
          ...(fact.importance === undefined ? {} : { importance: fact.importance }),
        },
        signal,
      );
      if (updated !== undefined) {
        result.superseded.push(updated.id);
        continue;
      }
    }
    const same = await storedDuplicate(memory, scope.tenant_id, filter, fact.text, policy, signal);
    if (same !== undefined) {
      await merge(memory, same, fact, signal);
      result.merged.push(same.id);
      continue;
    }
    fresh.push(fact);
  }
  if (fresh.length > 0) {
    const added = await memory.add(
      scope,
      fresh.map((fact) => ({ text: fact.text, importance: fact.importance, tags: fact.tags, metadata })),
      signal,
    );
    for (const record of added) result.added.push(record.id);
  }
  return result;
}

/** A stored memory of the scope that says the same as `text`. */
async function storedDuplicate(
  memory: LongTermMemory,
  tenantId: string,
  filter: MemoryFilter,
  text: string,
  policy: FactPolicy,
  signal: AbortSignal | undefined,
): Promise<MemoryRecord | undefined> {
  const key = normalise(text);
  const exact = await memory.search({ tenant_id: tenantId, text, mode: 'exact', filter, top_k: 5 }, signal);
  for (const hit of exact.hits) if (normalise(hit.memory.text) === key) return hit.memory;
  const similar = await memory.search(
    { tenant_id: tenantId, text, mode: 'semantic', filter, top_k: 1 },
    signal,
  );
  const best = similar.hits[0];
  const cosine = best?.scores.semantic?.score ?? best?.score ?? 0;
  return best !== undefined && cosine >= policy.duplicateSimilarity ? best.memory : undefined;
}

/** Joins a repeated fact into the stored memory; writes only when something changes. */
async function merge(
  memory: LongTermMemory,
  stored: MemoryRecord,
  fact: ExtractedFact,
  signal: AbortSignal | undefined,
): Promise<void> {
  const tags = [...new Set([...stored.tags, ...(fact.tags ?? [])])];
  const importance = Math.max(stored.importance, fact.importance ?? 0);
  if (tags.length === stored.tags.length && importance === stored.importance) return;
  await memory.update(stored.tenant_id, stored.id, { tags, importance }, signal);
}
