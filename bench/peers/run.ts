/**
 * `npm run bench:peers`: the same agent work on agentd and on the TypeScript agent frameworks,
 * one subject at a time, each in its own process, against the same mock model processes.
 *
 * Workloads: one-shot (one streamed call), tool round trip (calculator), a 20-turn session, and
 * 1,000 / 10,000 tasks in flight against a slow streaming mock. Each (round, workload, subject)
 * is a fresh `driver.ts` process; rounds repeat the whole matrix and medians are reported.
 *
 * Flags: --quick (smoke test: small counts, one round)  --rounds N (3)  --rounds-10k N (1)  --seconds S (3)
 *        --only a,b (subjects)  --workloads one-shot,tool,session,c1000,c10000  --no-docs
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startMockProcess } from '../lib/agentd.js';
import { installBenchPackages, installedVersions } from '../lib/bench-packages.js';
import { describeMachine } from '../lib/machine.js';
import { type DriverOutcome, runDriver } from '../lib/processes.js';
import { updateDocs, writeResult } from '../lib/report.js';
import { median } from '../lib/stats.js';
import { renderChart } from './chart.js';
import type { DriverRequest, DriverResult, Workload } from './driver.js';
import { type Configuration, type Row, renderTables, type SubjectInfo } from './table.js';

const root = new URL('../..', import.meta.url).pathname;
const peersDir = join(root, 'bench', 'peers');

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    'rounds-10k': { type: 'string' },
    seconds: { type: 'string' },
    only: { type: 'string' },
    workloads: { type: 'string' },
    'no-docs': { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const rounds = Number(values.rounds ?? (quick ? 1 : 3));
const seconds = Number(values.seconds ?? (quick ? 1 : 3));
/** 10,000 in flight takes a minute or more for the slower peers: one round unless asked (keeps the full run ≤ 20 min). */
const rounds10k = Number(values['rounds-10k'] ?? 1);

const SUBJECTS: SubjectInfo[] = [
  { id: 'baseline', label: 'baseline (bare undici, no framework)', packages: [] },
  { id: 'agentd', label: 'agentd', packages: [] },
  { id: 'mastra', label: 'Mastra', packages: ['@mastra/core'] },
  { id: 'voltagent', label: 'VoltAgent', packages: ['@voltagent/core'] },
  { id: 'openai-agents', label: 'OpenAI Agents SDK', packages: ['@openai/agents'] },
  { id: 'langgraph', label: 'LangGraph.js', packages: ['@langchain/langgraph', '@langchain/openai'] },
  { id: 'ai-sdk', label: 'Vercel AI SDK', packages: ['ai', '@ai-sdk/openai-compatible'] },
];

/** The slow streaming mock of the concurrency workloads: first token after 1 s, then 4 more 200 ms apart. */
const SLOW_MOCK = ['--ttft-ms', '1000', '--interval-ms', '200', '--tokens', '5'];

const CONFIGURATIONS: Configuration[] = [
  { id: 'one-shot', workload: 'one-shot', title: 'One-shot (one streamed model call)', inflight: 0 },
  { id: 'tool', workload: 'tool', title: 'Tool round trip (calculator: two model calls)', inflight: 0 },
  { id: 'session', workload: 'session', title: 'Session of 20 turns with history', inflight: 0 },
  {
    id: 'c1000',
    workload: 'concurrency',
    title: '1,000 tasks in flight (slow streaming mock)',
    inflight: quick ? 100 : 1000,
  },
  {
    id: 'c10000',
    workload: 'concurrency',
    title: '10,000 tasks in flight (slow streaming mock)',
    inflight: quick ? 300 : 10_000,
  },
];

const only = values.only?.split(',');
const subjects = SUBJECTS.filter((s) => only === undefined || s.id === 'baseline' || only.includes(s.id));
const wanted = values.workloads?.split(',');
const configurations = CONFIGURATIONS.filter((c) => wanted === undefined || wanted.includes(c.id));

function versions(subject: SubjectInfo): { versions: Record<string, string>; missing?: string } {
  return installedVersions(peersDir, subject.packages);
}

/**
 * A figure for the progress line. A run with no completed task has no latency: the driver's NaN
 * arrives as null through JSON, which must not end the whole run.
 */
function figure(value: number | null, digits: number): string {
  return value === null || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits);
}

/** Runs one driver process and returns its result line, or why it failed. */
function drive(request: DriverRequest): Promise<DriverOutcome<DriverResult>> {
  return runDriver<DriverResult>(
    ['--expose-gc', '--import', 'tsx', join(peersDir, 'driver.ts'), JSON.stringify(request)],
    {
      cwd: root,
      env: {
        NODE_ENV: 'production',
        OPENAI_API_KEY: 'bench',
        // Quiet logging and no telemetry export, the same for every subject.
        LOG_LEVEL: 'warn',
        AGENTD_LOG_LEVEL: 'warn',
        MASTRA_TELEMETRY_DISABLED: 'true',
        OPENAI_AGENTS_DISABLE_TRACING: '1',
        LANGCHAIN_TRACING_V2: 'false',
        LANGSMITH_TRACING: 'false',
        VOLTAGENT_DISABLE_TELEMETRY: 'true',
      },
      timeoutMs: request.deadlineMs * 2 + 60_000,
    },
  );
}

// No install scripts: none of the peers needs one (protobufjs's only checks its version).
installBenchPackages(peersDir, 'the peer frameworks', [
  ['ci', '--ignore-scripts', '--no-audit', '--no-fund'],
]);
const fast = await startMockProcess();
const slow = await startMockProcess(SLOW_MOCK);
const raw: Record<string, Record<string, DriverOutcome<DriverResult>[]>> = {};
const started = Date.now();
try {
  for (let round = 1; round <= rounds; round++) {
    for (const configuration of configurations) {
      if (configuration.id === 'c10000' && round > rounds10k) continue;
      for (const subject of subjects) {
        if (versions(subject).missing !== undefined) continue;
        const concurrency = configuration.workload === 'concurrency';
        const request: DriverRequest = {
          subject: subject.id,
          workload: configuration.workload as Workload,
          baseURL: `${concurrency ? slow.match : fast.match}/v1`,
          model: 'mock',
          warmup: concurrency ? 20 : configuration.workload === 'session' ? 2 : quick ? 10 : 50,
          latencyTasks: configuration.workload === 'session' ? (quick ? 3 : 20) : quick ? 30 : 300,
          latencySeconds: quick ? 1 : 2,
          connections: 32,
          seconds,
          inflight: configuration.inflight,
          turns: 20,
          deadlineMs: concurrency
            ? quick
              ? 30_000
              : configuration.id === 'c10000'
                ? 120_000
                : 60_000
            : 60_000,
        };
        const result = await drive(request);
        const byConfiguration = raw[configuration.id] ?? {};
        raw[configuration.id] = byConfiguration;
        byConfiguration[subject.id] = [...(byConfiguration[subject.id] ?? []), result];
        const elapsed = Math.round((Date.now() - started) / 1000);
        process.stderr.write(
          `[${elapsed}s] round ${round} ${configuration.id} ${subject.id}: ${
            'failed' in result
              ? `FAILED ${result.failed}`
              : `${Math.round(result.tasks_per_sec)} tasks/s, p50 ${figure(result.p50_ms, 2)} ms, p99 ${figure(result.p99_ms, 2)} ms, cpu ${figure(result.cpu_ms_per_task, 3)} ms/task, peak RSS ${Math.round(result.peak_rss_mib)} MiB${result.rss_per_task_kib === undefined ? '' : `, ${figure(result.rss_per_task_kib, 1)} KiB/task`}, errors ${result.errors}${result.first_error ? ` (${result.first_error})` : ''}`
          }\n`,
        );
      }
    }
  }
} finally {
  await slow.stop();
  await fast.stop();
}

/** Medians over rounds of every figure, per configuration and subject. */
const rows: Record<string, Row[]> = {};
for (const configuration of configurations) {
  const list: Row[] = [];
  rows[configuration.id] = list;
  for (const subject of subjects) {
    const { versions: found, missing } = versions(subject);
    const results = raw[configuration.id]?.[subject.id] ?? [];
    const ok = results.filter((r): r is DriverResult => !('failed' in r));
    const failures = results.filter((r): r is { failed: string } => 'failed' in r);
    const pick = (f: (r: DriverResult) => number | undefined): number =>
      median(ok.map(f).filter((v): v is number => v !== undefined && Number.isFinite(v)));
    const note = missing ?? failures[0]?.failed ?? ok.find((r) => r.first_error !== undefined)?.first_error;
    list.push({
      subject: subject.id,
      label: subject.label,
      versions: found,
      runs: ok.length,
      tasks_per_sec: pick((r) => r.tasks_per_sec),
      p50_ms: pick((r) => r.p50_ms),
      p99_ms: pick((r) => r.p99_ms),
      cpu_ms_per_task: pick((r) => r.cpu_ms_per_task),
      event_loop_lag_p99_ms: pick((r) => r.event_loop_lag_p99_ms),
      peak_rss_mib: pick((r) => r.peak_rss_mib),
      rss_per_task_kib: pick((r) => r.rss_per_task_kib),
      errors: ok.reduce((sum, r) => sum + r.errors, 0) + failures.length,
      ...(note === undefined ? {} : { note }),
    });
  }
}

const machine = describeMachine();
const markdown = renderTables(configurations, rows, {
  machine,
  rounds,
  rounds10k,
  seconds,
  quick,
  slowMock: SLOW_MOCK.join(' '),
});
process.stdout.write(`\n${markdown}\n`);
const file = writeResult(quick ? 'peers-quick' : 'peers', {
  machine,
  quick,
  rounds,
  seconds,
  slow_mock: SLOW_MOCK,
  subjects: subjects.map((s) => ({ ...s, ...versions(s) })),
  configurations,
  summary: rows,
  raw,
});
if (!values['no-docs'] && !quick) {
  updateDocs('peers', markdown);
  renderChart(join(root, 'docs', 'images', 'peers.svg'), configurations, rows, machine);
}
process.stdout.write(`\nresults: ${file}\n`);
