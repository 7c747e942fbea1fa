/**
 * `npm run bench:locomo`: LLM-free retrieval quality on LoCoMo (../shared/data/locomo/). Every
 * turn of a conversation becomes a memory (speaker and session date in its metadata); each
 * question of categories 1–4 is asked in every mode, and evidence recall@k is the share of the
 * question's evidence turns found in the top k, averaged over questions. `LOCOMO_STORAGE=postgres`
 * runs the same on the Postgres adapter (the local server, a schema dropped at the end).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  HashingEmbedder,
  LongTermMemory,
  type MemoryStorage,
  PostgresMemoryStorage,
  type SearchMode,
  SqliteMemoryStorage,
} from '../../src/memory/index.js';
import { describeMachine } from '../lib/machine.js';
import { table, updateDocs, writeResult } from '../lib/report.js';
import { round } from '../lib/stats.js';

interface Turn {
  speaker: string;
  dia_id: string;
  text: string;
  blip_caption?: string;
}

interface Question {
  question: string;
  evidence: string[];
  category: number;
}

const DATA = process.env.LOCOMO_DIR ?? new URL('../../../shared/data/locomo/', import.meta.url).pathname;
const KS = [1, 5, 10, 20];
const MODES: SearchMode[] = ['fulltext', 'semantic', 'hybrid'];
const POSTGRES = process.env.LOCOMO_STORAGE === 'postgres';
const SCHEMA = `agentd_bench_locomo_${process.pid}`;

function openStorage(): Promise<MemoryStorage> | MemoryStorage {
  if (!POSTGRES) return new SqliteMemoryStorage({ path: ':memory:' });
  const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  return PostgresMemoryStorage.open({ url, schema: SCHEMA, poolSize: 2 });
}

/** Evidence ids as listed, tolerating the few entries that pack several ids in one string. */
function evidenceIds(evidence: string[]): string[] {
  return evidence.flatMap((e) => e.split(/[;,\s]+/)).filter((e) => /^D\d+:\d+$/.test(e));
}

/** Loads one conversation into a fresh in-memory store; returns the memory and the questions. */
async function loadConversation(file: string): Promise<{ memory: LongTermMemory; questions: Question[] }> {
  const data = JSON.parse(readFileSync(join(DATA, file), 'utf8')) as Record<string, unknown>;
  const memory = await LongTermMemory.open({
    storage: await openStorage(),
    embedder: new HashingEmbedder(),
    maxBatch: 100_000,
  });
  const items = [];
  for (let s = 1; Array.isArray(data[`session_${s}`]); s++) {
    const date = String(data[`session_${s}_date_time`] ?? '');
    for (const turn of data[`session_${s}`] as Turn[]) {
      const caption = turn.blip_caption === undefined ? '' : ` [shares ${turn.blip_caption}]`;
      items.push({
        text: `${turn.speaker}: ${turn.text}${caption}`,
        metadata: { dia_id: turn.dia_id, speaker: turn.speaker, session: s, date },
      });
    }
  }
  await memory.add({ tenant_id: 'locomo' }, items);
  const questions = (data.qa as Question[]).filter((q) => q.category >= 1 && q.category <= 4);
  return { memory, questions };
}

const files = readdirSync(DATA)
  .filter((f) => f.endsWith('.json'))
  .sort();
const sums = new Map<SearchMode, number[]>(MODES.map((m) => [m, KS.map(() => 0)]));
let asked = 0;
for (const file of files) {
  const { memory, questions } = await loadConversation(file);
  for (const q of questions) {
    const evidence = new Set(evidenceIds(q.evidence));
    if (evidence.size === 0) continue;
    asked++;
    for (const mode of MODES) {
      const result = await memory.search({ tenant_id: 'locomo', text: q.question, mode, top_k: 20 });
      const ids = result.hits.map((h) => h.memory.metadata.dia_id as string);
      const row = sums.get(mode)!;
      KS.forEach((k, i) => {
        let found = 0;
        for (const id of ids.slice(0, k)) if (evidence.has(id)) found++;
        row[i]! += found / evidence.size;
      });
    }
  }
  if (POSTGRES) await (memory.storage as PostgresMemoryStorage).dropSchema();
  await memory.close();
}

const rows = MODES.map((mode) => [mode, ...sums.get(mode)!.map((s) => round(s / asked))]);
const header = ['mode', ...KS.map((k) => `recall@${k}`)];
console.log(`LoCoMo evidence recall, ${files.length} conversations, ${asked} questions (categories 1-4)`);
console.log(table(header, rows));
const results = Object.fromEntries(
  rows.map(([mode, ...values]) => [mode, Object.fromEntries(KS.map((k, i) => [`recall@${k}`, values[i]]))]),
);
const name = POSTGRES ? 'memory-locomo-postgres' : 'memory-locomo';
const path = writeResult(name, { machine: describeMachine(), questions: asked, results });
console.log(`wrote ${path}`);
if (POSTGRES && process.env.BENCH_UPDATE_DOCS !== '0') {
  updateDocs(
    name,
    `### Memory retrieval quality on Postgres: LoCoMo (${files.length} conversations, ${asked} questions)\n\n` +
      '`LOCOMO_STORAGE=postgres npm run bench:locomo`: the same questions on the Postgres adapter, whose full text is ' +
      'ranked by `ts_rank` (term frequency, no document-frequency weighting) instead of BM25.\n\n' +
      table(header, rows),
  );
} else if (process.env.BENCH_UPDATE_DOCS !== '0') {
  updateDocs(
    'memory-locomo',
    `### Memory retrieval quality: LoCoMo (${files.length} conversations, ${asked} questions, categories 1–4)\n\n` +
      `Evidence recall@k, offline hashing embedder, no LLM. \`npm run bench:locomo\`. Plain BM25 over the turns ` +
      'scores about 0.61 recall@10; with the offline embedder, hybrid only matches it (the hashing vectors are a ' +
      'weaker lexical signal); a model embedder (`memory.embedder.kind: openai`) is needed to beat it.\n\n' +
      table(header, rows),
  );
}
