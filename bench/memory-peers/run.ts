/**
 * `npm run bench:memory:peers`: agentd's long-term memory side by side with mem0 (open-source
 * mode, `mem0ai/oss`) and Mastra (`@mastra/memory` on `@mastra/libsql`), on the same data, the
 * same queries and the same embedder (agentd's mock `/v1/embeddings`, one process for all), one
 * subject after another, each phase in a fresh process.
 *
 * Phases: one user with 1,000 then 10,000 memories (LoCoMo turns; add throughput in batches,
 * search latency), and LoCoMo retrieval quality (each conversation stored for its own user,
 * evidence recall@10 over the questions of categories 1–4; the first two conversations unless
 * --conversations 5: the peers add 10–100× slower than agentd, and all five take them minutes).
 *
 * Flags: --quick (smoke test: 300 and 1,000 memories, one conversation)  --sizes 1000,10000
 *        --conversations N (2)  --only agentd,mem0,mastra  --phases load,locomo  --rounds N (1)
 *        --add-seconds S (240)  --search-seconds S (15)  --queries N (1000)  --no-docs
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { request as httpRequest } from 'undici';
import { startMockProcess } from '../lib/agentd.js';
import { installBenchPackages, installedVersions } from '../lib/bench-packages.js';
import { describeMachine } from '../lib/machine.js';
import { type DriverOutcome, runDriver } from '../lib/processes.js';
import { updateDocs, writeResult } from '../lib/report.js';
import { median, percentile } from '../lib/stats.js';
import type { DriverRequest, DriverResult } from './driver.js';
import { type PhaseRows, renderTables, type SubjectInfo, type SubjectRow } from './table.js';

const root = new URL('../..', import.meta.url).pathname;
const benchDir = join(root, 'bench', 'memory-peers');

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    only: { type: 'string' },
    phases: { type: 'string' },
    rounds: { type: 'string' },
    'add-seconds': { type: 'string' },
    'search-seconds': { type: 'string' },
    queries: { type: 'string' },
    conversations: { type: 'string' },
    'no-docs': { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const sizes = (values.sizes ?? (quick ? '300,1000' : '1000,10000')).split(',').map(Number);
const phases = (values.phases ?? 'load,locomo').split(',');
const rounds = Number(values.rounds ?? 1);
const addSeconds = Number(values['add-seconds'] ?? (quick ? 60 : 240));
const searchSeconds = Number(values['search-seconds'] ?? (quick ? 5 : 15));
const queries = Number(values.queries ?? (quick ? 50 : 1000));
const conversations = Number(values.conversations ?? (quick ? 1 : 2));
const K = 10;
const DIMENSIONS = 384;
const BATCH = 100;

const SUBJECTS: SubjectInfo[] = [
  { id: 'agentd', label: 'agentd', packages: [] },
  { id: 'mem0', label: 'mem0 (OSS)', packages: ['mem0ai'] },
  {
    id: 'mastra',
    label: 'Mastra memory',
    packages: ['@mastra/memory', '@mastra/core', '@mastra/libsql', '@ai-sdk/openai-compatible'],
  },
];
const only = values.only?.split(',');
const subjects = SUBJECTS.filter((s) => only === undefined || only.includes(s.id));

function versions(subject: SubjectInfo): { versions: Record<string, string>; missing?: string } {
  return installedVersions(benchDir, subject.packages);
}

type Outcome = DriverOutcome<DriverResult>;

/** Runs one driver process and returns its result, or why it failed. */
function drive(request: DriverRequest, home: string): Promise<Outcome> {
  return runDriver<DriverResult>(['--import', 'tsx', join(benchDir, 'driver.ts'), JSON.stringify(request)], {
    cwd: benchDir,
    env: {
      NODE_ENV: 'production',
      // A private home: mem0 keeps a config file under ~/.mem0.
      HOME: home,
      OPENAI_API_KEY: 'bench',
      LOG_LEVEL: 'warn',
      AGENTD_LOG_LEVEL: 'warn',
      MEM0_TELEMETRY: 'false',
      MASTRA_TELEMETRY_DISABLED: 'true',
    },
    timeoutMs: (request.addSeconds + request.searchSeconds * 4 + 600) * 1000,
  });
}

/** The query-embedding round trip every search pays: single-text POSTs to the mock (bare undici), p50 ms. */
async function embeddingRoundTrip(baseURL: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 220; i++) {
    const t0 = performance.now();
    const response = await httpRequest(`${baseURL}/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock', input: `what did the user say about topic ${i}?` }),
    });
    await response.body.arrayBuffer();
    if (i >= 20) times.push(performance.now() - t0);
  }
  return percentile(times, 50);
}

const PHASES = [
  ...(phases.includes('load')
    ? sizes.map((count) => ({ id: `n${count}`, phase: 'load' as const, count }))
    : []),
  ...(phases.includes('locomo') ? [{ id: 'locomo', phase: 'locomo' as const, count: 0 }] : []),
];

// mem0's local vector store and history are better-sqlite3 files; with no internet its prebuilt
// binary cannot be fetched, so it compiles from source with node-gyp: a few minutes, once.
installBenchPackages(benchDir, 'the peer memory libraries', [
  ['ci', '--ignore-scripts', '--no-audit', '--no-fund'],
  ['rebuild', 'better-sqlite3'],
]);
const home = mkdtempSync(join(tmpdir(), 'agentd-bench-memory-peers-home-'));
const mock = await startMockProcess();
const baseURL = `${mock.match}/v1`;
const raw: Record<string, Record<string, Outcome[]>> = {};
const started = Date.now();
let embedP50 = Number.NaN;
try {
  embedP50 = await embeddingRoundTrip(baseURL);
  for (let round = 1; round <= rounds; round++) {
    for (const phase of PHASES) {
      for (const subject of subjects) {
        const { missing } = versions(subject);
        const byPhase = raw[phase.id] ?? {};
        raw[phase.id] = byPhase;
        const record = (outcome: Outcome): void => {
          byPhase[subject.id] = [...(byPhase[subject.id] ?? []), outcome];
        };
        if (missing !== undefined) {
          record({ failed: missing });
          continue;
        }
        // A size the subject's add rate at the previous size cannot load in the budget is not attempted.
        const smaller = sizes.filter((size) => size < phase.count).at(-1);
        const previous = smaller === undefined ? undefined : raw[`n${smaller}`]?.[subject.id]?.at(-1);
        if (phase.phase === 'load' && previous !== undefined && !('failed' in previous)) {
          const projected = phase.count / previous.memories_per_sec;
          if (projected > addSeconds) {
            const failed = `not run: at its ${Math.round(previous.memories_per_sec)} memories/s (measured at ${smaller?.toLocaleString('en-US')}), adding ${phase.count.toLocaleString('en-US')} would take ~${Math.round(projected / 60)} min, beyond the ${addSeconds} s add budget`;
            record({ failed });
            process.stderr.write(`round ${round} ${phase.id} ${subject.id}: ${failed}\n`);
            continue;
          }
        }
        const request: DriverRequest = {
          subject: subject.id,
          phase: phase.phase,
          count: phase.count,
          baseURL,
          model: 'mock',
          dimensions: DIMENSIONS,
          batch: BATCH,
          warmup: quick ? 5 : 20,
          queries,
          searchSeconds,
          addSeconds,
          k: K,
          conversations,
        };
        const result = await drive(request, home);
        record(result);
        const elapsed = Math.round((Date.now() - started) / 1000);
        const searches = 'failed' in result ? '' : Object.entries(result.search);
        process.stderr.write(
          `[${elapsed}s] round ${round} ${phase.id} ${subject.id}: ${
            'failed' in result
              ? `FAILED ${result.failed}`
              : `${result.count} memories${result.complete ? '' : ' (add budget ran out)'} at ${Math.round(result.memories_per_sec)}/s; ${[
                  ...(searches === '' ? [] : searches).map(
                    ([mode, f]) => `${mode} p50 ${f.p50_ms.toFixed(2)} ms p99 ${f.p99_ms.toFixed(2)} ms`,
                  ),
                  ...Object.entries(result.recall).map(([mode, r]) => `${mode} recall@${K} ${r.toFixed(3)}`),
                ].join(
                  ', ',
                )}; peak RSS ${Math.round(result.peak_rss_mib)} MiB; ${Math.round(result.seconds)} s`
          }\n`,
        );
      }
    }
  }
} finally {
  await mock.stop();
  rmSync(home, { recursive: true, force: true });
}

/** Medians over rounds, per phase, subject and search mode. */
const summary: Record<string, PhaseRows> = {};
for (const phase of PHASES) {
  const rows: SubjectRow[] = [];
  for (const subject of subjects) {
    const outcomes = raw[phase.id]?.[subject.id] ?? [];
    const ok = outcomes.filter((r): r is DriverResult => !('failed' in r));
    const failure = outcomes.find((r): r is { failed: string } => 'failed' in r)?.failed;
    const pick = (f: (r: DriverResult) => number | undefined): number =>
      median(ok.map(f).filter((v): v is number => v !== undefined && Number.isFinite(v)));
    const incomplete = ok.find((r) => !r.complete);
    const note =
      failure ??
      (incomplete === undefined
        ? undefined
        : `add budget (${addSeconds} s) ran out after ${incomplete.count.toLocaleString('en-US')} memories: no search figures`);
    const modes = ok[0] === undefined ? [] : Object.keys(ok[0].search);
    const base = {
      subject: subject.id,
      label: subject.label,
      runs: ok.length,
      memories: pick((r) => r.count),
      memories_per_sec: pick((r) => r.memories_per_sec),
      peak_rss_mib: pick((r) => r.peak_rss_mib),
      ...(note === undefined ? {} : { note }),
    };
    if (modes.length === 0) rows.push({ ...base, mode: '—' });
    for (const mode of modes) {
      rows.push({
        ...base,
        mode,
        p50_ms: pick((r) => r.search[mode]?.p50_ms),
        p99_ms: pick((r) => r.search[mode]?.p99_ms),
        short: ok.reduce((sum, r) => sum + (r.search[mode]?.short ?? 0), 0),
        ...(phase.phase === 'locomo' ? { recall: pick((r) => r.recall[mode]) } : {}),
      });
    }
  }
  summary[phase.id] = { phase: phase.phase, count: phase.count, rows };
}

const machine = describeMachine();
const questions = Object.values(raw.locomo ?? {})
  .flat()
  .find((r): r is DriverResult => !('failed' in r))?.questions;
const markdown = renderTables(summary, {
  machine,
  rounds,
  quick,
  k: K,
  batch: BATCH,
  addSeconds,
  embedP50,
  load: loadavg()[0]!,
  questions,
  subjects: subjects.map((s) => ({ ...s, ...versions(s) })),
});
process.stdout.write(`\n${markdown}\n`);
const file = writeResult(quick ? 'memory-peers-quick' : 'memory-peers', {
  machine,
  quick,
  rounds,
  sizes,
  k: K,
  batch: BATCH,
  add_seconds: addSeconds,
  search_seconds: searchSeconds,
  queries,
  embedding_round_trip_p50_ms: embedP50,
  subjects: subjects.map((s) => ({ ...s, ...versions(s) })),
  summary,
  raw,
});
if (!values['no-docs'] && !quick) updateDocs('memory-peers', markdown);
process.stdout.write(`\nresults: ${file}\n`);
