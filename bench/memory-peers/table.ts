/** The Markdown tables of `npm run bench:memory:peers`: one per phase, ratios to agentd. */
import { table } from '../lib/report.js';
import { round } from '../lib/stats.js';

export interface SubjectInfo {
  id: string;
  label: string;
  /** npm packages the subject is made of (their installed versions are reported). */
  packages: string[];
}

/** Medians over rounds for one subject and search mode in one phase. */
export interface SubjectRow {
  subject: string;
  label: string;
  mode: string;
  runs: number;
  memories: number;
  memories_per_sec: number;
  peak_rss_mib: number;
  p50_ms?: number;
  p99_ms?: number;
  /** Searches that returned fewer than k memories (or unknown ones). */
  short?: number;
  /** Mean evidence recall@k (locomo phase). */
  recall?: number;
  note?: string;
}

export interface PhaseRows {
  phase: 'load' | 'locomo';
  count: number;
  rows: SubjectRow[];
}

const show = (value: number | undefined): string | number =>
  value !== undefined && Number.isFinite(value) ? round(value) : '—';

/** The agentd search each peer's is compared with: mem0's fuses BM25 with vectors, Mastra's is vectors only. */
const COUNTERPART: Record<string, string> = { search: 'hybrid', 'semantic recall': 'semantic' };

function ratio(value: number | undefined, reference: number | undefined): string {
  if (value === undefined || reference === undefined) return '—';
  if (!Number.isFinite(value) || !Number.isFinite(reference) || reference === 0) return '—';
  return `${round(value / reference)}×`;
}

/** Notes for a row: the failure or budget reason, and searches that came back short. */
function notes(row: SubjectRow, k: number): string {
  const parts = [row.note ?? ''];
  if ((row.short ?? 0) > 0) parts.push(`${row.short} searches returned fewer than ${k} memories`);
  return parts.filter((p) => p !== '').join('; ');
}

export function renderTables(
  phases: Record<string, PhaseRows>,
  context: {
    machine: Record<string, unknown>;
    rounds: number;
    quick: boolean;
    k: number;
    batch: number;
    addSeconds: number;
    embedP50: number;
    load: number;
    questions: number | undefined;
    subjects: (SubjectInfo & { versions: Record<string, string> })[];
  },
): string {
  const { k } = context;
  const versions = context.subjects
    .flatMap((s) => Object.entries(s.versions).map(([name, version]) => `\`${name}@${version}\``))
    .join(', ');
  const parts = [
    '### Memory: agentd versus mem0 and Mastra (`npm run bench:memory:peers`)',
    '',
    `The same memories, queries and embedder for every subject: LoCoMo turns as the memories, LoCoMo questions as the ` +
      `queries, every vector from agentd's mock \`/v1/embeddings\` (384-d, one process for all), so all subjects store ` +
      `identical vectors. agentd uses its OpenAI-compatible embedder at the mock; mem0 (\`mem0ai/oss\`) its \`openai\` ` +
      `embedder with \`baseURL\` at the mock, its local \`memory\` vector store and SQLite history (files), adds with ` +
      `\`infer: false\` (stored verbatim, no LLM extraction); Mastra \`@mastra/memory\` with \`@mastra/libsql\` ` +
      `(file) and an \`@ai-sdk/openai-compatible\` embedding model at the mock, memories as user messages, search by ` +
      `semantic recall (\`scope: 'resource'\`, \`messageRange: 0\`, \`lastMessages: false\`). Versions: ${versions}. ` +
      `Adds in calls of ${context.batch}; top ${k}; each search embeds its query over HTTP (a bare embedding round trip ` +
      `to the mock with undici: p50 ${show(context.embedP50)} ms). One subject at a time, each phase a fresh process; ` +
      `${context.rounds} round${context.rounds === 1 ? '' : 's'} (medians). Ratios: "agentd ÷ subject" for ` +
      `throughput, "subject ÷ agentd" for latency and memory; a search is compared with agentd's like it (mem0's ` +
      `search, which fuses its BM25 scores with the vector scores, with agentd's hybrid; Mastra's semantic recall ` +
      `with agentd's semantic).`,
  ];
  for (const phase of Object.values(phases)) {
    const rows = phase.rows;
    const agentd = rows.find((r) => r.subject === 'agentd' && r.mode === 'semantic');
    /** The agentd row a peer's search latency is compared with. */
    const counterpart = (row: SubjectRow): SubjectRow | undefined =>
      row.subject === 'agentd'
        ? undefined
        : rows.find((r) => r.subject === 'agentd' && r.mode === (COUNTERPART[row.mode] ?? 'semantic'));
    if (phase.phase === 'load') {
      parts.push(
        '',
        `#### One user, ${phase.count.toLocaleString('en-US')} memories`,
        '',
        table(
          [
            'subject',
            'search',
            'adds/s',
            'agentd ÷ subject (adds)',
            'search p50 ms',
            'search p99 ms',
            'subject ÷ agentd (p50)',
            'peak RSS MiB',
            'subject ÷ agentd (RSS)',
            'notes',
          ],
          rows.map((row, i) => {
            const first = i === 0 || rows[i - 1]!.subject !== row.subject;
            return [
              first ? row.label : '',
              row.mode,
              first ? show(row.memories_per_sec) : '',
              first && row.subject !== 'agentd' ? ratio(agentd?.memories_per_sec, row.memories_per_sec) : '',
              show(row.p50_ms),
              show(row.p99_ms),
              row.subject === 'agentd' ? '' : ratio(row.p50_ms, counterpart(row)?.p50_ms),
              first ? show(row.peak_rss_mib) : '',
              first && row.subject !== 'agentd' ? ratio(row.peak_rss_mib, agentd?.peak_rss_mib) : '',
              notes(row, k),
            ];
          }),
        ),
      );
    } else {
      const memories = rows.find((r) => Number.isFinite(r.memories) && r.memories > 0)?.memories;
      parts.push(
        '',
        `#### LoCoMo retrieval quality (${memories?.toLocaleString('en-US') ?? '?'} turns, each conversation for its own user; ` +
          `${context.questions ?? '?'} questions of categories 1–4)`,
        '',
        table(
          [
            'subject',
            'search',
            `evidence recall@${k}`,
            'search p50 ms',
            'search p99 ms',
            'subject ÷ agentd (p50)',
            'adds/s',
            'peak RSS MiB',
            'notes',
          ],
          rows.map((row, i) => {
            const first = i === 0 || rows[i - 1]!.subject !== row.subject;
            return [
              first ? row.label : '',
              row.mode,
              show(row.recall),
              show(row.p50_ms),
              show(row.p99_ms),
              row.subject === 'agentd' ? '' : ratio(row.p50_ms, counterpart(row)?.p50_ms),
              first ? show(row.memories_per_sec) : '',
              first ? show(row.peak_rss_mib) : '',
              notes(row, k),
            ];
          }),
        ),
      );
    }
  }
  const m = context.machine;
  parts.push(
    '',
    `Machine: ${String(m.cpu)}, ${String(m.cores)} cores, ${String(m.memory_gib)} GiB, Node ${String(m.node)}, ` +
      `${String(m.date).slice(0, 10)}; load average ${context.load.toFixed(1)} at the end of the run` +
      `${context.load > Number(m.cores) ? ' (a shared, busy machine: provisional figures)' : ''}. ` +
      `A peer still adding after ${context.addSeconds} s stops there, and a size its measured add rate cannot reach ` +
      `in that budget is not attempted (the reason is in its row).`,
  );
  return parts.join('\n');
}
