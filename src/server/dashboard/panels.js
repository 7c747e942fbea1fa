// Panels fed by /metrics and /readyz: charts, admission and health, cache hit rates.

import { barChart, formatValue, lineChart } from './charts.js';
import { bucketsBy, histogramQuantile, sumBy } from './prometheus.js';

const $ = (id) => document.getElementById(id);
const QUANTILES = [
  ['p50', 0.5],
  ['p95', 0.95],
  ['p99', 0.99],
];

function quantileGroups(samples, metric, label) {
  const groups = [];
  for (const [key, buckets] of bucketsBy(samples, metric, [label])) {
    const count = buckets.find((bucket) => bucket.le === Number.POSITIVE_INFINITY)?.count ?? 0;
    if (count === 0) continue;
    groups.push({
      label: key,
      bars: QUANTILES.map(([name, q]) => ({ name, value: histogramQuantile(q, buckets) })),
    });
  }
  return groups.sort((a, b) => a.label.localeCompare(b.label));
}

function hasObservations(samples, metric) {
  return samples.some((sample) => sample.name === `${metric}_count` && sample.value > 0);
}

/** Draws the charts from the kept scrapes (quantiles over the window, or since start). */
export function renderCharts(history) {
  const latest = history.latest;
  if (latest === undefined) return;
  const throughput = history
    .rates('agentd_tasks_total', ['status'])
    .map((s) => ({ name: s.key, points: s.points }));
  lineChart($('chart-throughput'), throughput, {
    unit: '/s',
    emptyText: history.scrapes.length < 2 ? 'Waiting for a second scrape…' : 'No task finished yet.',
  });
  const windowed = history.windowIncrease();
  const seconds = Math.round((latest.time - history.scrapes[0].time) / 1000);
  const pick = (metric) =>
    windowed !== undefined && hasObservations(windowed, metric)
      ? { samples: windowed, note: `(last ${seconds} s)` }
      : { samples: latest.samples, note: '(since start)' };
  const latency = pick('agentd_task_duration_seconds');
  $('latency-window').textContent = latency.note;
  barChart($('chart-latency'), quantileGroups(latency.samples, 'agentd_task_duration_seconds', 'agent'), {
    unit: 's',
    emptyText: 'No task finished yet.',
  });
  const ttft = pick('agentd_llm_time_to_first_token_seconds');
  barChart($('chart-ttft'), quantileGroups(ttft.samples, 'agentd_llm_time_to_first_token_seconds', 'model'), {
    unit: 's',
    emptyText: 'No streamed model call yet.',
  });
  const tokens = sumBy(latest.samples, 'agentd_llm_tokens_total', ['model', 'direction']);
  const models = [
    ...new Set([...tokens].filter(([, value]) => value > 0).map(([key]) => key.split('\u0000')[0])),
  ].sort();
  barChart(
    $('chart-tokens'),
    models.map((model) => ({
      label: model,
      bars: ['input', 'output'].map((direction) => ({
        name: direction,
        value: tokens.get(`${model}\u0000${direction}`) ?? 0,
      })),
    })),
    { emptyText: 'No tokens yet.' },
  );
  const cost = sumBy(latest.samples, 'agentd_cost_usd_total', ['model']);
  barChart(
    $('chart-cost'),
    [...cost]
      .filter(([, value]) => value > 0)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([model, value]) => ({ label: model, bars: [{ name: 'USD', value }] })),
    { unit: 'usd', emptyText: 'No cost yet.' },
  );
}

function fillDetails(dl, rows) {
  dl.replaceChildren();
  for (const [label, value, state] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.textContent = String(value);
    if (state !== undefined) dd.className = `state-${state}`;
    dl.append(dt, dd);
  }
}

function fillTable(tbody, rows, emptyId) {
  $(emptyId).hidden = rows.length > 0;
  while (tbody.rows.length > rows.length) tbody.deleteRow(-1);
  rows.forEach((values, i) => {
    const tr = tbody.rows[i] ?? tbody.insertRow();
    values.forEach((value, c) => {
      const td = tr.cells[c] ?? tr.insertCell();
      const [text, className] = Array.isArray(value)
        ? value
        : [value, typeof value === 'number' ? 'num' : ''];
      if (td.textContent !== String(text)) td.textContent = String(text);
      if (td.className !== className) td.className = className;
    });
  });
}

/** The readiness checks, resource guard, refusals by limit and every circuit breaker. */
export function renderAdmission(readiness, samples) {
  if (readiness !== undefined) {
    const checks = readiness.checks ?? {};
    const rows = [
      ['Ready', readiness.ready ? 'yes' : 'no', readiness.ready ? 'ok' : 'refuse'],
      [
        'Storage',
        `${checks.storage ?? '?'} (${readiness.store})`,
        checks.storage === 'ok' ? 'ok' : 'unreachable',
      ],
      ['Draining', checks.draining ? 'yes' : 'no', checks.draining ? 'warn' : 'ok'],
      ['Running / queued', `${readiness.active_tasks} / ${readiness.queued_tasks}`],
      ['Waiting for a slot', checks.waiting_for_slots ?? 0],
      ['Provider', readiness.provider],
    ];
    if (checks.redis !== undefined)
      rows.push(['Redis', checks.redis, checks.redis === 'ok' ? 'ok' : 'unreachable']);
    fillDetails($('readiness'), rows);
    const resource = checks.resource;
    fillDetails(
      $('resource-guard'),
      resource === undefined
        ? [['State', 'off']]
        : [
            ['State', resource.state, resource.state],
            ['Heap', `${resource.heap_used_mb} / ${resource.heap_limit_mb} MiB`],
            ['Event-loop lag p99', `${resource.event_loop_lag_p99_ms} ms`],
          ],
    );
    const breakers = (checks.breakers ?? []).map((b) => [
      b.target,
      [b.state, `state-${b.state}`],
      b.failures ?? 0,
      b.requests ?? 0,
      b.retry_after_ms > 0 ? formatValue(b.retry_after_ms / 1000, 's') : '–',
    ]);
    fillTable($('breakers').tBodies[0], breakers, 'breakers-empty');
  }
  if (samples !== undefined) {
    const refusals = [...sumBy(samples, 'agentd_admission_rejections_total', ['reason'])]
      .filter(([, value]) => value > 0)
      .sort((a, b) => b[1] - a[1]);
    fillTable($('refusals').tBodies[0], refusals, 'refusals-empty');
  }
}

/** Hit rate per cache and level (a negative hit counts as a hit: it saved an upstream call). */
export function renderCache(samples) {
  const counts = sumBy(samples, 'agentd_cache_requests_total', ['cache', 'level', 'result']);
  const rows = new Map();
  for (const [key, value] of counts) {
    const [cache, level, result] = key.split('\u0000');
    const id = `${cache}\u0000${level}`;
    const row = rows.get(id) ?? { cache, level, hits: 0, total: 0 };
    row.total += value;
    if (result === 'hit' || result === 'negative_hit') row.hits += value;
    rows.set(id, row);
  }
  const table = [...rows.values()]
    .filter((row) => row.total > 0)
    .sort((a, b) => `${a.cache}${a.level}`.localeCompare(`${b.cache}${b.level}`))
    .map((row) => [
      row.cache,
      row.level,
      `${((row.hits / row.total) * 100).toFixed(1)} %`,
      row.hits,
      row.total,
    ]);
  fillTable($('cache-rates').tBodies[0], table, 'cache-empty');
}
