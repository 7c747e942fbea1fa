/**
 * The data every subject gets: LoCoMo turns (`../shared/data/locomo/`) as memories, and the
 * questions of categories 1–4 with their evidence turns. The same texts, in the same order, for
 * every subject.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MemoryItem } from './subject.js';

export const LOCOMO_DIR =
  process.env.LOCOMO_DIR ?? new URL('../../../shared/data/locomo/', import.meta.url).pathname;

interface Turn {
  speaker: string;
  dia_id: string;
  text: string;
  blip_caption?: string;
}

interface RawQuestion {
  question: string;
  evidence: string[];
  category: number;
}

export interface Conversation {
  /** The file's name without `.json`: also the user the conversation is stored for. */
  id: string;
  turns: MemoryItem[];
  questions: { question: string; evidence: string[] }[];
}

/** Evidence ids as listed, tolerating the few entries that pack several ids in one string. */
function evidenceIds(evidence: string[]): string[] {
  return evidence.flatMap((e) => e.split(/[;,\s]+/)).filter((e) => /^D\d+:\d+$/.test(e));
}

/** Every conversation: turns as `Speaker: text [shares caption]` (as `bench:locomo` stores them). */
export function loadConversations(dir = LOCOMO_DIR): Conversation[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => {
      const id = file.replace(/\.json$/, '');
      const data = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>;
      const turns: MemoryItem[] = [];
      for (let s = 1; Array.isArray(data[`session_${s}`]); s++) {
        for (const turn of data[`session_${s}`] as Turn[]) {
          const caption = turn.blip_caption === undefined ? '' : ` [shares ${turn.blip_caption}]`;
          turns.push({ ref: `${id}:${turn.dia_id}`, text: `${turn.speaker}: ${turn.text}${caption}` });
        }
      }
      const questions = (data.qa as RawQuestion[])
        .filter((q) => q.category >= 1 && q.category <= 4)
        .map((q) => ({ question: q.question, evidence: evidenceIds(q.evidence).map((e) => `${id}:${e}`) }))
        .filter((q) => q.evidence.length > 0);
      return { id, turns, questions };
    });
}

/**
 * `count` memories for one user: every LoCoMo turn in order, then again with a suffix naming the
 * pass (` (note 2)`) until there are enough. Every text is distinct, so no subject's embedding
 * cache answers an add.
 */
export function corpus(conversations: Conversation[], count: number): MemoryItem[] {
  const turns = conversations.flatMap((c) => c.turns);
  return Array.from({ length: count }, (_, i) => {
    const turn = turns[i % turns.length]!;
    const pass = Math.floor(i / turns.length);
    return pass === 0 ? turn : { ref: `${turn.ref}#${pass + 1}`, text: `${turn.text} (note ${pass + 1})` };
  });
}

/** Every question of every conversation, in order: the search queries of the load phases. */
export function allQuestions(conversations: Conversation[]): string[] {
  return conversations.flatMap((c) => c.questions.map((q) => q.question));
}
