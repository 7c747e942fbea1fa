/**
 * `npm run bench:sessions`: session storage side by side in one run — append 1,000 messages
 * (target ≤ 5 ms) and read the last 20 (target ≤ 20 µs) on SQLite (with the tail cache, and its
 * SQL path alone) and on the local Postgres. Rounds alternate between stores so that load from
 * other processes falls on all of them alike. Wall-clock medians are reported with the best run
 * and the CPU time per append, since on a shared machine a few-millisecond operation is often
 * preempted.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NewMessage, PostgresStore, SqliteStore, type Store } from '../../src/store/index.js';
import { describeMachine } from '../lib/machine.js';
import { table, updateDocs, writeResult } from '../lib/report.js';
import { percentile, round } from '../lib/stats.js';

const ROUNDS = Number(process.env.SESSIONS_BENCH_ROUNDS ?? 4);
const APPENDS_PER_ROUND = 10;
const READS_PER_ROUND = 2000;
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const messages: NewMessage[] = Array.from({ length: 1000 }, (_, i) => ({
  message: { role: i % 2 === 0 ? 'user' : 'assistant', content: `message ${i} with some words` },
  tokens: 8,
  task_id: null,
}));

interface Subject {
  name: string;
  store: Store;
  appends: number[];
  appendCpuMs: number;
  reads: number[];
  next: number;
}

const dir = mkdtempSync(join(tmpdir(), 'agentd-bench-sessions-'));
const subjects: Subject[] = [
  { name: 'SQLite', store: new SqliteStore({ path: join(dir, 'cached.db') }) },
  {
    name: 'SQLite, SQL reads (no tail cache)',
    store: new SqliteStore({ path: join(dir, 'sql.db'), tailCache: false }),
  },
].map((s) => ({ ...s, appends: [], appendCpuMs: 0, reads: [], next: 0 }));
let postgres: PostgresStore | undefined;
try {
  postgres = await PostgresStore.open({
    url: DATABASE_URL,
    schema: `agentd_bench_${randomBytes(4).toString('hex')}`,
    poolSize: 2,
  });
  subjects.push({
    name: 'Postgres (local)',
    store: postgres,
    appends: [],
    appendCpuMs: 0,
    reads: [],
    next: 0,
  });
} catch (err) {
  console.log(`Postgres not measured: ${(err as Error).message}`);
}

for (const subject of subjects) {
  // The session every read measures, and a warm-up append.
  await subject.store.appendMessages('read', 't', messages);
  await subject.store.flush();
}

for (let round = 0; round < ROUNDS; round++) {
  for (const subject of subjects) {
    const cpu = process.cpuUsage();
    for (let i = 0; i < APPENDS_PER_ROUND; i++) {
      const started = performance.now();
      await subject.store.appendMessages(`s${subject.next++}`, 't', messages);
      await subject.store.flush();
      subject.appends.push(performance.now() - started);
    }
    const used = process.cpuUsage(cpu);
    subject.appendCpuMs += (used.user + used.system) / 1000;
    for (let i = 0; i < READS_PER_ROUND; i++) {
      const started = performance.now();
      await subject.store.sessionWindow('read', 20, 1_000_000);
      subject.reads.push(performance.now() - started);
    }
  }
}

const header = [
  'store',
  'append 1,000 p50 (ms)',
  'best (ms)',
  'CPU per append (ms)',
  'read last 20 p50 (µs)',
];
const rows = subjects.map((s) => [
  s.name,
  round(percentile(s.appends, 50)),
  round(Math.min(...s.appends)),
  round(s.appendCpuMs / s.appends.length),
  round(percentile(s.reads, 50) * 1000),
]);
const results = Object.fromEntries(
  subjects.map((s) => [
    s.name,
    {
      append_1000_p50_ms: round(percentile(s.appends, 50)),
      append_1000_best_ms: round(Math.min(...s.appends)),
      append_1000_cpu_ms: round(s.appendCpuMs / s.appends.length),
      read_last_20_p50_us: round(percentile(s.reads, 50) * 1000),
      appends: s.appends.length,
      reads: s.reads.length,
    },
  ]),
);
for (const subject of subjects) await subject.store.close();
if (postgres !== undefined) {
  const cleanup = await PostgresStore.open({ url: DATABASE_URL, schema: postgres.schema, poolSize: 1 });
  await cleanup.dropSchema();
  await cleanup.close();
}
rmSync(dir, { recursive: true, force: true });

const load = loadavg()[0]!.toFixed(1);
console.log(table(header, rows));
const path = writeResult('sessions', { machine: describeMachine(), load_average: Number(load), results });
console.log(`wrote ${path}`);
if (process.env.BENCH_UPDATE_DOCS !== '0') {
  updateDocs(
    'sessions',
    '### Sessions (`npm run bench:sessions`)\n\n' +
      'Targets: append 1,000 messages ≤ 5 ms, read the last 20 ≤ 20 µs. One run, rounds alternating between ' +
      `the stores, on the shared 2-core machine (load average ${load}). "best" is the fastest append, ` +
      '"CPU" the process CPU time per append (for Postgres, the client side only). SQLite reads the window ' +
      "from its tail cache (the newest messages of recent sessions, kept in step with the store's writes); " +
      'the second row is its SQL path alone. See discuss/0700-sessions.md.\n\n' +
      table(header, rows),
  );
}
