/**
 * `npm run bench:metrics`: the cost of recording a metric on the hot path (target ≤ 100 ns),
 * side by side with prom-client doing the same work. agentd pre-binds a label set once (as the
 * runtime does per agent, model and tool) and then only adds; the label lookup is measured too.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { CounterFamily, HistogramFamily } from '../../src/observability/series.js';
import { describeMachine } from '../lib/machine.js';
import { measureMicro } from '../lib/micro.js';
import { table, updateDocs, writeResult } from '../lib/report.js';
import { round } from '../lib/stats.js';

const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const counters = new CounterFamily('bench_tasks_total', 'bench', ['agent', 'status']);
const histograms = new HistogramFamily('bench_duration_seconds', 'bench', ['agent'], BOUNDS);
const boundCounter = counters.with('assistant', 'succeeded');
const boundHistogram = histograms.with('assistant');

const registry = new Registry();
const promCounter = new Counter({
  name: 'prom_tasks_total',
  help: 'bench',
  labelNames: ['agent', 'status'],
  registers: [registry],
});
const promHistogram = new Histogram({
  name: 'prom_duration_seconds',
  help: 'bench',
  labelNames: ['agent'],
  buckets: BOUNDS,
  registers: [registry],
});
const promBoundCounter = promCounter.labels('assistant', 'succeeded');
const promBoundHistogram = promHistogram.labels('assistant');

let x = 0;
const value = (): number => {
  x = (x + 0.013) % 3;
  return x;
};
const results = await measureMicro({
  'agentd: counter inc (pre-bound)': () => boundCounter.inc(),
  'agentd: histogram observe (pre-bound)': () => boundHistogram.observe(value()),
  'agentd: counter with(labels) + inc': () => counters.with('assistant', 'succeeded').inc(),
  'prom-client: counter inc (pre-bound labels)': () => promBoundCounter.inc(),
  'prom-client: histogram observe (pre-bound labels)': () => promBoundHistogram.observe(value()),
  'prom-client: counter inc({labels})': () => promCounter.inc({ agent: 'assistant', status: 'succeeded' }),
});

const machine = describeMachine();
const byName = new Map(results.map((r) => [r.name, r]));
const counterP50 = byName.get('agentd: counter inc (pre-bound)')!.p50_ns;
const histogramP50 = byName.get('agentd: histogram observe (pre-bound)')!.p50_ns;
const markdown = [
  table(
    ['operation', 'p50 ns', 'avg ns', 'p99 ns'],
    results.map((r) => [r.name, round(r.p50_ns), round(r.avg_ns), round(r.p99_ns)]),
  ),
  '',
  `Recording on the hot path: counter **${round(counterP50)} ns**, histogram **${round(histogramP50)} ns** p50 (target ≤ 100 ns). ${String(machine.cpu)}, Node ${String(machine.node)}. Command: \`npm run bench:metrics\`.`,
].join('\n');
console.log(markdown);
console.log(`wrote ${writeResult('metrics', { machine, results })}`);
updateDocs('metrics', markdown);
