import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AgentdMetrics, CounterFamily, HistogramFamily } from '../../src/observability/index.js';

describe('metric series', () => {
  it('renders counters in Prometheus text format, escaping label values', () => {
    const family = new CounterFamily('x_total', 'help text', ['agent', 'status']);
    family.with('a"b\\c\nd', 'ok').inc(2);
    family.with('plain', 'ok').inc();
    const out: string[] = [];
    family.render(out);
    assert.deepEqual(out, [
      '# HELP x_total help text',
      '# TYPE x_total counter',
      'x_total{agent="a\\"b\\\\c\\nd",status="ok"} 2',
      'x_total{agent="plain",status="ok"} 1',
    ]);
  });

  it('renders histograms with cumulative buckets, sum and count', () => {
    const family = new HistogramFamily('h_seconds', 'h', ['m'], [0.1, 1]);
    const series = family.with('x');
    for (const value of [0.05, 0.1, 0.5, 2]) series.observe(value);
    const out: string[] = [];
    family.render(out);
    assert.deepEqual(out.slice(2), [
      'h_seconds_bucket{m="x",le="0.1"} 2',
      'h_seconds_bucket{m="x",le="1"} 3',
      'h_seconds_bucket{m="x",le="+Inf"} 4',
      'h_seconds_sum{m="x"} 2.65',
      'h_seconds_count{m="x"} 4',
    ]);
  });

  it('hands out one series per label tuple, so callers can keep it', () => {
    const metrics = new AgentdMetrics();
    assert.equal(metrics.agent('a'), metrics.agent('a'));
    assert.equal(metrics.tasks.with('a', 'succeeded'), metrics.agent('a').finished.succeeded);
    assert.equal(metrics.tenantLabel('acme'), '*');
    assert.equal(new AgentdMetrics({ tenantLabels: true }).tenantLabel('acme'), 'acme');
  });
});
