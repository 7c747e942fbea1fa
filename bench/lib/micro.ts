import { bench, run } from 'mitata';

export interface MicroResult {
  name: string;
  p50_ns: number;
  avg_ns: number;
  p99_ns: number;
}

/** Runs mitata benchmarks quietly and returns their timings (nanoseconds per call). */
export async function measureMicro(cases: Record<string, () => unknown>): Promise<MicroResult[]> {
  for (const [name, fn] of Object.entries(cases)) bench(name, fn);
  const { benchmarks } = await run({ format: 'quiet' });
  return benchmarks.map((trial) => {
    const stats = trial.runs[0]?.stats;
    return {
      name: trial.alias,
      p50_ns: stats?.p50 ?? Number.NaN,
      avg_ns: stats?.avg ?? Number.NaN,
      p99_ns: stats?.p99 ?? Number.NaN,
    };
  });
}
