/**
 * `npm run bench:sandbox`: the sandbox's figures, side by side in one run.
 *   - run_javascript (QuickJS/wasm, fresh instance per run) and, when installed, isolated-vm
 *     running the same snippet in a fresh context of a warm isolate: warm latency p50/p99;
 *   - run_python (CPython/WASI, fresh interpreter per run): warm latency p50/p99;
 *   - cold latency (a new pool's first run) for both languages;
 *   - runs per second with a pool, and memory per pooled worker/process.
 * Runs go through `Sandbox.run` from the built package (admission, limits, pool, worker or child
 * process), as the tools do. Rounds alternate the subjects; medians of rounds are reported.
 *
 * Flags: --rounds N (3)  --js-runs N (400)  --py-runs N (30)  --cold N (3)  --seconds S (3)
 * isolated-vm is not a dependency (it compiles from source for ~1.5 min on install); to compare:
 *   npm install --no-save isolated-vm@5.0.4 && npm run bench:sandbox
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../dist/config/index.js';
import { Sandbox } from '../../dist/sandbox/index.js';
import { describeMachine } from '../lib/machine.js';
import { table, updateDocs, writeResult } from '../lib/report.js';
import { median, percentile, round } from '../lib/stats.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'js-runs': { type: 'string', default: '400' },
    'py-runs': { type: 'string', default: '30' },
    cold: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
  },
});
const rounds = Number(values.rounds);
const jsRuns = Number(values['js-runs']);
const pyRuns = Number(values['py-runs']);
const coldRuns = Number(values.cold);
const seconds = Number(values.seconds);

const JS_SNIPPET = 'let s = 0; for (let i = 0; i < 100; i++) s += i; s';
const PY_SNIPPET = 's = 0\nfor i in range(100):\n    s += i\ns';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function sandboxConfig(workers: number, processes: number) {
  return loadConfig({
    env: {},
    config: {
      sandbox: {
        max_concurrent_per_tenant: 64,
        javascript: { workers, memory_mb: 64 },
        python: { processes, memory_mb: 128, isolation: 'process' },
      },
    },
  }).config.sandbox;
}

// ---- isolated-vm, if installed ----------------------------------------------------------------
type Ivm = {
  Isolate: new (options: {
    memoryLimit: number;
  }) => {
    createContext(): Promise<{
      eval(code: string, options: { timeout: number }): Promise<unknown>;
      release(): void;
    }>;
    dispose(): void;
    getHeapStatisticsSync(): { total_heap_size: number; used_heap_size: number };
  };
};
let ivm: Ivm | undefined;
let ivmStatus = 'installed';
try {
  ivm = createRequire(import.meta.url)('isolated-vm') as Ivm;
} catch (err) {
  ivmStatus = `not installed (${(err as Error).message.split('\n')[0]}); see the header of this script`;
}

// ---- measurements ------------------------------------------------------------------------------
/** Latency of sequential runs with a gap between them, so the pool is warm for each. */
async function warmLatency(
  run: () => Promise<unknown>,
  count: number,
  gap: () => Promise<unknown>,
): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < 10; i++) await run(); // warm-up
  for (let i = 0; i < count; i++) {
    await gap();
    const started = performance.now();
    await run();
    samples.push(performance.now() - started);
  }
  return samples;
}

/** Runs per second with `callers` runs in flight, back to back, for `seconds`. */
async function throughput(run: () => Promise<unknown>, callers: number): Promise<number> {
  const until = performance.now() + seconds * 1000;
  let done = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < until) {
        await run();
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

const MB = 1024 * 1024;
const raw: Record<string, number[][]> = {};
const keep = (key: string, value: number[]) => {
  raw[key] ??= [];
  raw[key]!.push(value);
};

for (let round = 1; round <= rounds; round++) {
  process.stdout.write(`round ${round}/${rounds}\n`);

  // JavaScript, warm: one worker; each run waits until the worker has its instance made.
  const jsSandbox = new Sandbox(sandboxConfig(1, 1));
  await jsSandbox.warm(['javascript']);
  const runJs = () => jsSandbox.run({ language: 'javascript', code: JS_SNIPPET, tenantId: 'bench' });
  keep(
    'js_warm',
    await warmLatency(runJs, jsRuns, async () => {
      while (jsSandbox.stats().javascript!.ready < 1) await sleep(1);
    }),
  );
  keep('js_back_to_back', await warmLatency(runJs, jsRuns, async () => {}));
  await jsSandbox.close();

  // isolated-vm, warm isolate, fresh context per run (the same isolation unit as a fresh QuickJS instance).
  if (ivm !== undefined) {
    const isolate = new ivm.Isolate({ memoryLimit: 64 });
    const runIvm = async () => {
      const context = await isolate.createContext();
      try {
        return await context.eval(JS_SNIPPET, { timeout: 5000 });
      } finally {
        context.release();
      }
    };
    keep('ivm_warm', await warmLatency(runIvm, jsRuns, () => sleep(1)));
    keep('ivm_back_to_back', await warmLatency(runIvm, jsRuns, async () => {}));
    keep('ivm_runs_per_sec', [await throughput(runIvm, 4)]);
    isolate.dispose();
  }

  // Python, warm: wait until the interpreter for the next run is up before each run.
  const pySandbox = new Sandbox(sandboxConfig(1, 1));
  await pySandbox.warm(['python']);
  const runPy = () => pySandbox.run({ language: 'python', code: PY_SNIPPET, tenantId: 'bench' });
  keep(
    'py_warm',
    await warmLatency(runPy, pyRuns, async () => {
      while (pySandbox.stats().python!.ready < 1) await sleep(5);
    }),
  );
  await pySandbox.close();

  // Cold: a new pool's first run (worker or process start, module compile, interpreter start).
  const jsCold: number[] = [];
  const pyCold: number[] = [];
  for (let i = 0; i < coldRuns; i++) {
    for (const language of ['javascript', 'python'] as const) {
      const cold = new Sandbox(sandboxConfig(1, 1));
      const started = performance.now();
      await cold.run({
        language,
        code: language === 'javascript' ? JS_SNIPPET : PY_SNIPPET,
        tenantId: 'bench',
      });
      (language === 'javascript' ? jsCold : pyCold).push(performance.now() - started);
      await cold.close();
    }
  }
  keep('js_cold', jsCold);
  keep('py_cold', pyCold);

  // Throughput and memory with a pool of two (this machine has two cores).
  const before = process.memoryUsage().rss;
  const pool = new Sandbox(sandboxConfig(2, 2));
  await pool.warm(['javascript']);
  keep('js_runs_per_sec', [
    await throughput(() => pool.run({ language: 'javascript', code: JS_SNIPPET, tenantId: 'b' }), 4),
  ]);
  keep('js_rss_per_worker_mb', [(process.memoryUsage().rss - before) / 2 / MB]);
  await pool.warm(['python']);
  keep('py_runs_per_sec', [
    await throughput(() => pool.run({ language: 'python', code: PY_SNIPPET, tenantId: 'b' }), 2),
  ]);
  const pids = pool.pythonPids();
  keep('py_rss_per_process_mb', [pids.reduce((sum, pid) => sum + rssOf(pid), 0) / pids.length / MB]);
  await pool.close();
}

// ---- report ------------------------------------------------------------------------------------
const p = (key: string, q: number) => median((raw[key] ?? []).map((s) => percentile(s, q)));
const one = (key: string) => median((raw[key] ?? []).map((s) => s[0]!));
const has = (key: string) => raw[key] !== undefined;
const summary = {
  js_warm_p50_ms: p('js_warm', 50),
  js_warm_p99_ms: p('js_warm', 99),
  js_back_to_back_p50_ms: p('js_back_to_back', 50),
  js_back_to_back_p99_ms: p('js_back_to_back', 99),
  js_cold_p50_ms: p('js_cold', 50),
  js_cold_p99_ms: p('js_cold', 99),
  js_runs_per_sec: one('js_runs_per_sec'),
  js_rss_per_worker_mb: one('js_rss_per_worker_mb'),
  py_warm_p50_ms: p('py_warm', 50),
  py_warm_p99_ms: p('py_warm', 99),
  py_cold_p50_ms: p('py_cold', 50),
  py_cold_p99_ms: p('py_cold', 99),
  py_runs_per_sec: one('py_runs_per_sec'),
  py_rss_per_process_mb: one('py_rss_per_process_mb'),
  ...(has('ivm_warm')
    ? {
        ivm_warm_p50_ms: p('ivm_warm', 50),
        ivm_warm_p99_ms: p('ivm_warm', 99),
        ivm_back_to_back_p50_ms: p('ivm_back_to_back', 50),
        ivm_back_to_back_p99_ms: p('ivm_back_to_back', 99),
        ivm_runs_per_sec: one('ivm_runs_per_sec'),
      }
    : {}),
};
const s = summary as Record<string, number>;
const dash = '—';
const rows: (string | number)[][] = [
  [
    'run_javascript (QuickJS/wasm, worker, fresh instance per run)',
    round(s.js_warm_p50_ms!),
    round(s.js_warm_p99_ms!),
    `${round(s.js_back_to_back_p50_ms!)} / ${round(s.js_back_to_back_p99_ms!)}`,
    `${round(s.js_cold_p50_ms!)} / ${round(s.js_cold_p99_ms!)}`,
    Math.round(s.js_runs_per_sec!),
    round(s.js_rss_per_worker_mb!),
  ],
  has('ivm_warm')
    ? [
        'isolated-vm 5.0.4 (in-process isolate, fresh context per run)',
        round(s.ivm_warm_p50_ms!),
        round(s.ivm_warm_p99_ms!),
        `${round(s.ivm_back_to_back_p50_ms!)} / ${round(s.ivm_back_to_back_p99_ms!)}`,
        dash,
        Math.round(s.ivm_runs_per_sec!),
        dash,
      ]
    : ['isolated-vm', ivmStatus, dash, dash, dash, dash, dash],
  [
    'run_python (CPython 3.12/WASI, child process, fresh interpreter per run)',
    round(s.py_warm_p50_ms!),
    round(s.py_warm_p99_ms!),
    dash,
    `${round(s.py_cold_p50_ms!)} / ${round(s.py_cold_p99_ms!)}`,
    round(s.py_runs_per_sec!),
    round(s.py_rss_per_process_mb!),
  ],
];
const machine = describeMachine();
const ratio = has('ivm_warm')
  ? ` QuickJS warm p50 / isolated-vm warm p50: **${round(s.js_warm_p50_ms! / s.ivm_warm_p50_ms!)}×**.`
  : '';
const text = [
  table(
    [
      'subject',
      'warm p50 ms',
      'warm p99 ms',
      'back-to-back p50 / p99 ms',
      'cold p50 / p99 ms',
      'runs/s (pool of 2)',
      'MB per pooled worker',
    ],
    rows,
  ),
  '',
  `Targets: JavaScript warm p50 ≤ 1 ms — **${round(s.js_warm_p50_ms!)} ms**; Python warm p50 ≤ 50 ms — **${round(s.py_warm_p50_ms!)} ms**.${ratio}`,
  '',
  `The snippet sums 0..99 and returns the sum. _Warm_: the pool is started and reports the next run's instance (JavaScript) or interpreter (Python) made — ${jsRuns} (JavaScript) or ${pyRuns} (Python) sequential runs per round, each started once the pool is ready; latency is \`Sandbox.run\` end to end (admission, limits, the message to the worker or the child's stdin, the run, the result). _Back-to-back_: no gap, so each run also waits for the previous run's instance to be made. _Cold_: a new pool's first run (worker or process start, module compile, interpreter start). Runs/s: 4 callers (JavaScript) or 2 (Python) against a pool of 2. Memory: process RSS growth per JavaScript worker (thread), RSS of each Python process. isolated-vm runs the snippet in a new context of one warm isolate per run, in this process.`,
  '',
  `Medians of ${rounds} rounds. ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${String(machine.date).slice(0, 10)}. Command: \`npm run bench:sandbox\`.`,
].join('\n');
process.stdout.write(`\n${text}\n`);
const file = writeResult('sandbox', {
  machine,
  rounds,
  jsRuns,
  pyRuns,
  coldRuns,
  seconds,
  isolated_vm: ivmStatus,
  summary,
  raw,
});
updateDocs('sandbox', text);
process.stdout.write(`\nresults: ${file}\n`);
