/**
 * One subject, one workload, in a fresh process (started by `bench/peers/run.ts`): warm up,
 * measure, print one JSON line. Every subject runs the same code here; only its adapter under
 * `subjects/` differs.
 *
 *   node --import tsx bench/peers/driver.ts '<json DriverRequest>'
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Subject, SubjectModule } from './subject.js';

export type Workload = 'one-shot' | 'tool' | 'session' | 'concurrency';

export interface DriverRequest {
  subject: string;
  workload: Workload;
  baseURL: string;
  model: string;
  /** Sequential tasks timed one by one (latency), after `warmup` untimed ones, for at most `latencySeconds`. */
  latencyTasks: number;
  latencySeconds: number;
  warmup: number;
  /** Throughput phase: `connections` tasks in flight for `seconds`. */
  connections: number;
  seconds: number;
  /** Concurrency workload: tasks started at once. */
  inflight: number;
  /** Turns of the session workload. */
  turns: number;
  /** Longest a phase may take before its unfinished tasks count as errors. */
  deadlineMs: number;
}

export interface DriverResult {
  /** Per-task wall time, sequential: p50/p99 in ms. */
  p50_ms: number;
  p99_ms: number;
  tasks_per_sec: number;
  completed: number;
  errors: number;
  first_error?: string;
  cpu_ms_per_task: number;
  event_loop_lag_p99_ms: number;
  /** RSS before the measured phase (after warm-up) and its peak during it, MiB. */
  rss_before_mib: number;
  peak_rss_mib: number;
  /** (peak − before) / tasks in flight, KiB (concurrency workload). */
  rss_per_task_kib?: number;
}

const TOOL_INPUT = 'What is 17*23?';

function check(answer: string, workload: Workload): void {
  if (workload === 'tool' ? !answer.includes('391') : answer.length === 0) {
    throw new Error(`unexpected answer: ${JSON.stringify(answer.slice(0, 200))}`);
  }
}

/** One task of the workload: a one-shot call, a tool round trip, or a whole session. */
async function task(subject: Subject, request: DriverRequest, index: number): Promise<void> {
  switch (request.workload) {
    case 'one-shot':
    case 'concurrency':
      return check(await subject.oneShot(`hello ${index}`), request.workload);
    case 'tool':
      return check(await subject.toolRoundTrip(TOOL_INPUT), 'tool');
    case 'session': {
      const conversation = subject.conversation();
      for (let turn = 1; turn <= request.turns; turn++)
        check(await conversation.send(`turn ${turn}: tell me more`), 'session');
      return;
    }
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const mib = (bytes: number): number => bytes / 2 ** 20;

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? '') as DriverRequest;
  const dir = mkdtempSync(join(tmpdir(), 'agentd-peers-'));
  const module = (await import(`./subjects/${request.subject}.ts`)) as SubjectModule;
  const inflight = request.workload === 'concurrency' ? request.inflight : request.connections;
  const subject = await module.create({ baseURL: request.baseURL, model: request.model, inflight, dir });
  let errors = 0;
  let firstError: string | undefined;
  const fail = (error: unknown): void => {
    errors++;
    firstError ??= error instanceof Error ? error.message : String(error);
  };
  try {
    // Warm-up (untimed): sequential, except on the slow mock, where the tasks overlap.
    if (request.workload === 'concurrency') {
      await Promise.all(Array.from({ length: request.warmup }, (_, i) => task(subject, request, i)));
    } else {
      for (let i = 0; i < request.warmup; i++) await task(subject, request, i);
    }

    // Latency: sequential tasks, one at a time.
    const times: number[] = [];
    const latencyUntil = Date.now() + request.latencySeconds * 1000;
    if (request.workload !== 'concurrency') {
      for (let i = 0; i < request.latencyTasks && Date.now() < latencyUntil; i++) {
        const started = performance.now();
        try {
          await task(subject, request, i);
          times.push(performance.now() - started);
        } catch (error) {
          fail(error);
        }
      }
    }

    // Load: `connections` tasks in flight for `seconds`, or `inflight` tasks started at once.
    globalThis.gc?.();
    const rssBefore = process.memoryUsage.rss();
    let peak = rssBefore;
    const sampler = setInterval(() => {
      const rss = process.memoryUsage.rss();
      if (rss > peak) peak = rss;
    }, 20);
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    let completed = 0;
    if (request.workload === 'concurrency') {
      const deadline = new Promise<'late'>((resolve) =>
        setTimeout(() => resolve('late'), request.deadlineMs).unref(),
      );
      const all = Array.from({ length: request.inflight }, (_, i) => {
        const taskStarted = performance.now();
        return task(subject, request, i).then(() => {
          completed++;
          times.push(performance.now() - taskStarted);
        }, fail);
      });
      if ((await Promise.race([Promise.all(all), deadline])) === 'late') {
        fail(
          new Error(
            `${request.inflight - completed - errors} tasks unfinished after ${request.deadlineMs} ms`,
          ),
        );
        errors = request.inflight - completed;
      }
    } else {
      const until = started + request.seconds * 1000;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (performance.now() < until) {
          try {
            await task(subject, request, next++);
            completed++;
          } catch (error) {
            fail(error);
          }
        }
      };
      await Promise.all(Array.from({ length: request.connections }, worker));
    }
    const elapsed = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    lag.disable();
    clearInterval(sampler);
    const peakNow = process.memoryUsage.rss();
    if (peakNow > peak) peak = peakNow;
    const result: DriverResult = {
      p50_ms: percentile(times, 50),
      p99_ms: percentile(times, 99),
      tasks_per_sec: completed / elapsed,
      completed,
      errors,
      cpu_ms_per_task: completed === 0 ? Number.NaN : (cpu.user + cpu.system) / 1000 / completed,
      event_loop_lag_p99_ms: lag.percentile(99) / 1e6,
      rss_before_mib: mib(rssBefore),
      peak_rss_mib: mib(peak),
      ...(request.workload === 'concurrency'
        ? { rss_per_task_kib: (peak - rssBefore) / 1024 / request.inflight }
        : {}),
      ...(firstError === undefined ? {} : { first_error: firstError.slice(0, 300) }),
    };
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  } finally {
    await Promise.race([subject.close(), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stdout.write(
      `FAILED ${JSON.stringify(error instanceof Error ? error.message : String(error))}\n`,
    );
    process.exit(1);
  },
);
