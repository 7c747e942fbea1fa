/** The Markdown tables of `npm run bench:peers`: one per workload, ratios to agentd. */
import { table } from '../lib/report.js';
import { round } from '../lib/stats.js';

export interface SubjectInfo {
  id: string;
  label: string;
  /** npm packages the subject is made of (their installed versions are reported). */
  packages: string[];
}

export interface Configuration {
  id: string;
  workload: string;
  title: string;
  /** Tasks started at once (concurrency workloads), else 0. */
  inflight: number;
}

/** Medians over rounds for one subject in one configuration. */
export interface Row {
  subject: string;
  label: string;
  versions: Record<string, string>;
  runs: number;
  tasks_per_sec: number;
  p50_ms: number;
  p99_ms: number;
  cpu_ms_per_task: number;
  event_loop_lag_p99_ms: number;
  peak_rss_mib: number;
  rss_per_task_kib: number;
  errors: number;
  note?: string;
}

const show = (value: number): string | number => (Number.isFinite(value) ? round(value) : '—');

function ratio(value: number, reference: number | undefined): string {
  if (reference === undefined || !Number.isFinite(value) || !Number.isFinite(reference) || reference === 0)
    return '—';
  return `${round(value / reference)}×`;
}

function label(row: Row): string {
  const versions = Object.entries(row.versions)
    .map(([name, version]) => `${name}@${version}`)
    .join(', ');
  return versions === '' ? row.label : `${row.label} (${versions})`;
}

export function renderTables(
  configurations: Configuration[],
  rows: Record<string, Row[]>,
  context: {
    machine: Record<string, unknown>;
    rounds: number;
    rounds10k: number;
    seconds: number;
    quick: boolean;
    slowMock: string;
  },
): string {
  const parts: string[] = [];
  const verdicts: string[] = [];
  for (const configuration of configurations) {
    const list = rows[configuration.id] ?? [];
    const baseline = list.find((r) => r.subject === 'baseline');
    const agentd = list.find((r) => r.subject === 'agentd');
    const concurrency = configuration.inflight > 0;
    const header = [
      'subject',
      'tasks/s',
      'agentd ÷ subject',
      'added p50 ms',
      'added p99 ms',
      'CPU ms/task',
      'loop lag p99 ms',
      'peak RSS MiB',
      ...(concurrency ? ['RSS KiB/task', 'subject ÷ agentd RSS/task'] : []),
      'errors',
      'notes',
    ];
    const body = list.map((row) => [
      label(row),
      show(row.tasks_per_sec),
      row.subject === 'baseline' ? '—' : ratio(agentd?.tasks_per_sec ?? Number.NaN, row.tasks_per_sec),
      row.subject === 'baseline' ? '—' : show(row.p50_ms - (baseline?.p50_ms ?? Number.NaN)),
      row.subject === 'baseline' ? '—' : show(row.p99_ms - (baseline?.p99_ms ?? Number.NaN)),
      show(row.cpu_ms_per_task),
      show(row.event_loop_lag_p99_ms),
      show(row.peak_rss_mib),
      ...(concurrency
        ? [
            show(row.rss_per_task_kib),
            row.subject === 'baseline' ? '—' : ratio(row.rss_per_task_kib, agentd?.rss_per_task_kib),
          ]
        : []),
      row.errors,
      (row.note ?? '').replaceAll('|', '\\|').replaceAll('\n', ' ').slice(0, 160),
    ]);
    parts.push(
      `#### ${configuration.title}${concurrency ? ` — ${configuration.inflight.toLocaleString('en-US')} in flight` : ''}`,
      '',
      table(header, body),
      '',
    );
    // The issue's targets: ≥ 10× the best peer's throughput (workloads 1–3), ≤ 1/10 of its RSS per task (4).
    const peers = list.filter((r) => r.subject !== 'baseline' && r.subject !== 'agentd' && r.runs > 0);
    if (agentd !== undefined && peers.length > 0) {
      if (concurrency) {
        const best = peers.reduce((a, b) => (b.rss_per_task_kib < a.rss_per_task_kib ? b : a));
        const r = best.rss_per_task_kib / agentd.rss_per_task_kib;
        if (!(agentd.rss_per_task_kib > 0)) {
          verdicts.push(
            `${configuration.title}: agentd's RSS did not grow measurably; the leanest peer, ${best.label}, used ${round(best.rss_per_task_kib)} KiB per in-flight task.`,
          );
          continue;
        }
        verdicts.push(
          `${configuration.title}: leanest peer ${best.label} uses ${round(r)}× agentd's RSS per in-flight task (target ≥ 10×) — ${r >= 10 ? 'met' : '**not met**'}.`,
        );
      } else {
        const best = peers.reduce((a, b) => (b.tasks_per_sec > a.tasks_per_sec ? b : a));
        const r = agentd.tasks_per_sec / best.tasks_per_sec;
        verdicts.push(
          `${configuration.title}: agentd does ${round(r)}× the throughput of the fastest peer, ${best.label} (target ≥ 10×) — ${r >= 10 ? 'met' : '**not met**'}.`,
        );
      }
    }
  }
  const m = context.machine;
  parts.push(
    ...verdicts.map((v) => `- ${v}`),
    '',
    `${context.quick ? '**Quick (smoke) run — not a measurement.** ' : ''}Medians of ${context.rounds} round(s) (${Math.min(context.rounds, context.rounds10k)} for 10,000 in flight); each (round, workload, subject) is a fresh process. Throughput: 32 tasks in flight for ${context.seconds} s (the concurrency workloads: all tasks started at once, against \`agentd mock-llm ${context.slowMock}\`). Added latency: the subject's sequential per-task latency minus the bare-undici baseline's (under load for the concurrency workloads). ${String(m.cpu)}, ${String(m.cores)} cores, Node ${String(m.node)}, ${String(m.date).slice(0, 10)}. Command: \`npm run bench:peers\`.`,
  );
  return parts.join('\n');
}
