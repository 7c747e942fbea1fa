/**
 * `npm run bench:memory-add [-- --ref <checkout>] [--rounds N]`: batched memory adds as
 * `bench:memory` measures them (20,000 memories with precomputed 384-d embeddings, batches of
 * 1,000, SQLite), each run in a fresh process (a cold start, as the benchmark is), this tree and
 * `--ref` (another checkout with its node_modules, e.g. main's) alternating. Reports per memory
 * the main thread's CPU time (what bounds throughput on an idle machine: JIT and GC helper threads
 * run beside it), the whole process's CPU time and wall time, medians and the ratio to `--ref`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeMachine } from '../lib/machine.js';
import { table, writeResult } from '../lib/report.js';
import { median, round } from '../lib/stats.js';

const DIM = 384;
const TOTAL = 20_000;
const BATCH = 1000;

interface Run {
  mainThreadUs: number;
  processCpuUs: number;
  wallUs: number;
}

/** This thread's CPU time in µs (Linux: /proc, in 10 ms ticks; 0 elsewhere). */
function threadCpuUs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return 0;
  }
}

/** One cold run of the adds against the checkout at `root`. */
async function child(root: string): Promise<Run> {
  const memoryModule: typeof import('../../src/memory/index.js') = await import(
    join(root, 'src/memory/index.ts')
  );
  let seed = 7;
  const vectors = new Float32Array(TOTAL * DIM);
  for (let i = 0; i < vectors.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    vectors[i] = seed / 2 ** 32 - 0.5;
  }
  const words = ['tea', 'coffee', 'hiking', 'paris', 'meeting', 'budget', 'python', 'garden', 'piano', 'cat'];
  const items = Array.from({ length: TOTAL }, (_, i) => ({
    text: `note ${i}: ${words[i % 10]} and ${words[(i * 7) % 10]} on day ${i % 365}`,
    user_id: i < 10_000 ? 'u-big' : `u-${i % 100}`,
    metadata: { day: i % 365 },
    embedding: vectors.subarray(i * DIM, (i + 1) * DIM),
  }));
  const dir = mkdtempSync(join(tmpdir(), 'agentd-bench-memory-add-'));
  const memory = await memoryModule.LongTermMemory.open({
    storage: new memoryModule.SqliteMemoryStorage({ path: join(dir, 'memory.db') }),
    embedder: new memoryModule.HashingEmbedder({ dimensions: DIM }),
    maxBatch: 10_000,
  });
  const thread = threadCpuUs();
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < TOTAL; i += BATCH) await memory.add({ tenant_id: 't' }, items.slice(i, i + BATCH));
  const wall = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const mainThread = threadCpuUs() - thread;
  await memory.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    mainThreadUs: mainThread / TOTAL,
    processCpuUs: (used.user + used.system) / TOTAL,
    wallUs: (wall * 1000) / TOTAL,
  };
}

const { values } = parseArgs({
  options: {
    child: { type: 'string' },
    ref: { type: 'string' },
    rounds: { type: 'string', default: '5' },
  },
});

if (values.child !== undefined) {
  console.log(JSON.stringify(await child(values.child)));
} else {
  const here = resolve(fileURLToPath(new URL('../..', import.meta.url)));
  const trees: [string, string][] = [['current', here]];
  if (values.ref !== undefined) trees.unshift(['ref', resolve(values.ref)]);
  const runs = new Map<string, Run[]>(trees.map(([name]) => [name, []]));
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const [name, root] of trees) {
      const out = spawnSync(
        process.execPath,
        ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', root],
        { encoding: 'utf8', cwd: here },
      );
      if (out.status !== 0) throw new Error(`${name} run failed: ${out.stderr}`);
      const run = JSON.parse(out.stdout.trim().split('\n').at(-1)!) as Run;
      runs.get(name)!.push(run);
      console.log(`round ${r + 1} ${name}: ${JSON.stringify(run)}`);
    }
  }
  const header = [
    'tree',
    'main thread µs/memory',
    'process CPU µs/memory',
    'wall µs/memory',
    'memories/s (wall)',
  ];
  const rows: (string | number)[][] = [];
  const results: Record<string, unknown> = {};
  for (const [name] of trees) {
    const list = runs.get(name)!;
    const m = {
      mainThreadUs: round(median(list.map((x) => x.mainThreadUs))),
      processCpuUs: round(median(list.map((x) => x.processCpuUs))),
      wallUs: round(median(list.map((x) => x.wallUs))),
    };
    results[name] = m;
    rows.push([name, m.mainThreadUs, m.processCpuUs, m.wallUs, Math.round(1e6 / m.wallUs)]);
  }
  if (values.ref !== undefined) {
    const ref = results.ref as Run;
    const current = results.current as Run;
    rows.push([
      'current ÷ ref',
      round(current.mainThreadUs / ref.mainThreadUs),
      round(current.processCpuUs / ref.processCpuUs),
      round(current.wallUs / ref.wallUs),
      '',
    ]);
  }
  console.log(table(header, rows));
  console.log(`wrote ${writeResult('memory-add', { machine: describeMachine(), ref: values.ref, results })}`);
}
