import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { MockLlmServer } from '../../src/llm/index.js';
import { call, oneMockModel, startAgentd, type TestAgentd } from '../helpers/agentd.js';

// The dashboard's browser modules are plain ES modules without DOM use at import time: Node runs
// them as they are served.
const modules = new URL('../../src/server/dashboard/', import.meta.url);
const prometheus: any = await import(new URL('prometheus.js', modules).href);
const sse: any = await import(new URL('sse.js', modules).href);

const INF = Number.POSITIVE_INFINITY;

describe('dashboard: Prometheus parsing', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;
  before(async () => {
    mock = await MockLlmServer.start();
    agentd = await startAgentd({
      config: {
        ...oneMockModel(mock.url),
      },
    });
  });
  after(async () => {
    await agentd.close();
    await mock.close();
  });

  it("reads every sample of agentd's own /metrics, histograms included", async () => {
    for (let i = 0; i < 4; i++) {
      const res = await call(agentd.url, 'POST', '/v1/agents/assistant/run', { input: `What is ${i}+1?` });
      assert.equal(res.status, 200);
    }
    const text = await (await request(`${agentd.url}/metrics`)).body.text();
    const { samples, types } = prometheus.parsePrometheus(text);
    const lines = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    assert.equal(samples.length, lines.length, 'one sample per exposition line');
    assert.equal(types.get('agentd_tasks_total'), 'counter');
    assert.equal(types.get('agentd_task_duration_seconds'), 'histogram');
    const find = (name: string, labels: Record<string, string>) =>
      samples.find((s: any) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        ?.value;
    assert.equal(find('agentd_tasks_total', { agent: 'assistant', status: 'succeeded' }), 4);
    assert.equal(find('agentd_task_duration_seconds_count', { agent: 'assistant' }), 4);
    assert.equal(find('agentd_cost_usd_total', { tenant: '*', model: 'm' }) >= 0, true);
    const buckets = prometheus.bucketsBy(samples, 'agentd_task_duration_seconds', ['agent']).get('assistant');
    assert.equal(buckets.find((b: any) => b.le === INF).count, 4);
    const p50 = prometheus.histogramQuantile(0.5, buckets);
    const sum = find('agentd_task_duration_seconds_sum', { agent: 'assistant' });
    assert.ok(p50 > 0 && p50 <= Math.max(0.0005, sum), `p50 ${p50} within the observed range`);
    const tokens = prometheus.sumBy(samples, 'agentd_llm_tokens_total', ['model']);
    assert.ok(tokens.get('m') > 0);
  });

  it('decodes escaped label values, special values and timestamps', () => {
    const { samples } = prometheus.parsePrometheus(
      [
        '# HELP x help text',
        'x{a="q\\"uote",b="back\\\\slash",c="new\\nline"} 1.5 1700000000000',
        'y +Inf',
        'z{} Nan',
        'w{a="1",} -Inf',
      ].join('\n'),
    );
    assert.deepEqual(samples[0], {
      name: 'x',
      labels: { a: 'q"uote', b: 'back\\slash', c: 'new\nline' },
      value: 1.5,
    });
    assert.equal(samples[1].value, INF);
    assert.ok(Number.isNaN(samples[2].value));
    assert.deepEqual(samples[3].labels, { a: '1' });
    assert.equal(samples[3].value, Number.NEGATIVE_INFINITY);
  });
});

describe('dashboard: quantiles as PromQL histogram_quantile computes them', () => {
  const buckets = [
    { le: 0.1, count: 2 },
    { le: 0.5, count: 6 },
    { le: 1, count: 8 },
    { le: INF, count: 10 },
  ];
  const q = (value: number, input = buckets) => prometheus.histogramQuantile(value, input);

  it('interpolates linearly inside the bucket holding the rank, the first bucket starting at 0', () => {
    assert.ok(Math.abs(q(0.5) - 0.4) < 1e-12);
    assert.ok(Math.abs(q(0.1) - 0.05) < 1e-12);
    assert.equal(q(0.8), 1);
    assert.equal(q(0), 0);
  });

  it('answers a rank in the +Inf bucket with the highest finite bound', () => {
    assert.equal(q(0.9), 1);
    assert.equal(q(0.99), 1);
    assert.equal(q(1), 1);
  });

  it('returns NaN without observations or without a +Inf bucket, ±Inf outside [0, 1]', () => {
    assert.ok(
      Number.isNaN(
        q(0.5, [
          { le: 1, count: 0 },
          { le: INF, count: 0 },
        ]),
      ),
    );
    assert.ok(Number.isNaN(q(0.5, [{ le: 1, count: 3 }])));
    assert.ok(Number.isNaN(q(0.5, [])));
    assert.ok(Number.isNaN(q(Number.NaN)));
    assert.equal(q(-0.1), Number.NEGATIVE_INFINITY);
    assert.equal(q(1.1), INF);
  });

  it('sorts buckets, sums duplicate bounds and repairs non-monotonic counts', () => {
    const shuffled = [buckets[2]!, buckets[0]!, buckets[3]!, buckets[1]!];
    assert.ok(Math.abs(q(0.5, shuffled) - 0.4) < 1e-12);
    const split = [{ le: 0.1, count: 1 }, { le: 0.1, count: 1 }, ...buckets.slice(1)];
    assert.ok(Math.abs(q(0.5, split) - 0.4) < 1e-12);
    // A racing scrape saw 5 in le=1 but 6 in le=0.5: le=1 is treated as 6.
    const racing = [
      { le: 0.5, count: 6 },
      { le: 1, count: 5 },
      { le: INF, count: 6 },
    ];
    assert.ok(Math.abs(q(0.5, racing) - 0.25) < 1e-12);
  });

  it('answers a non-positive lowest bound with that bound', () => {
    assert.equal(
      q(0.1, [
        { le: 0, count: 5 },
        { le: 1, count: 10 },
        { le: INF, count: 10 },
      ]),
      0,
    );
  });
});

describe('dashboard: counter increases across resets', () => {
  it('counts a lower reading as a restart from zero', () => {
    assert.equal(prometheus.counterIncrease([5, 8, 2, 4]), 7);
    assert.equal(prometheus.counterIncrease([3]), 0);
    assert.equal(prometheus.counterIncrease([0, 0, 0]), 0);
  });

  it('computes per-interval rates and window increases per series, resets included', () => {
    const history = new prometheus.MetricsHistory(10);
    const scrape = (t: number, ok: number, failed?: number) => {
      const samples = [
        { name: 'agentd_tasks_total', labels: { agent: 'a', status: 'succeeded' }, value: ok },
      ];
      if (failed !== undefined)
        samples.push({ name: 'agentd_tasks_total', labels: { agent: 'a', status: 'failed' }, value: failed });
      history.add(t, samples);
    };
    scrape(0, 10);
    assert.equal(history.windowIncrease(), undefined);
    scrape(5000, 20);
    scrape(10_000, 5, 2); // the process restarted; a failure series appeared
    const rates = history.rates('agentd_tasks_total', ['status']);
    const succeeded = rates.find((r: any) => r.key === 'succeeded').points;
    assert.deepEqual(succeeded, [
      [5000, 2],
      [10_000, 1],
    ]);
    assert.deepEqual(rates.find((r: any) => r.key === 'failed').points, [[10_000, 0.4]]);
    const increase = history.windowIncrease();
    const by = (status: string) => increase.find((s: any) => s.labels.status === status).value;
    assert.equal(by('succeeded'), 15);
    assert.equal(by('failed'), 2);
  });
});

describe('dashboard: SSE parsing across chunk boundaries', () => {
  const stream =
    ': heartbeat\n\n' +
    'id: 1\nevent: task.queued\ndata: {"agent":"a"}\n\n' +
    'id: 2\r\nevent: llm.delta\r\ndata: {"text":"héllo 🌍"}\r\n\r\n' +
    'id: 3\revent: multi\rdata: line one\rdata: line two\r\r' +
    'data:no space\n\n';
  const expected = [
    { id: '1', event: 'task.queued', data: '{"agent":"a"}' },
    { id: '2', event: 'llm.delta', data: '{"text":"héllo 🌍"}' },
    { id: '3', event: 'multi', data: 'line one\nline two' },
    { id: undefined, event: 'message', data: 'no space' },
  ];

  it('yields the same events however the text is split', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const parser = new sse.SseParser();
      const events = [...parser.push(stream.slice(0, cut)), ...parser.push(stream.slice(cut))];
      assert.deepEqual(events, expected, `split at ${cut}`);
    }
    const parser = new sse.SseParser();
    const oneByOne = [...stream].flatMap((char) => parser.push(char));
    assert.deepEqual(oneByOne, expected);
  });

  it('parses a real task event stream delivered in small pieces', async () => {
    const mock = await MockLlmServer.start();
    const agentd = await startAgentd({
      config: {
        ...oneMockModel(mock.url),
      },
    });
    try {
      const created = await call(agentd.url, 'POST', '/v1/tasks', {
        agent: 'assistant',
        input: 'Hi',
        wait: true,
      });
      assert.equal(created.body.status, 'succeeded');
      const raw = await (await request(`${agentd.url}/v1/tasks/${created.body.id}/events`)).body.text();
      const parser = new sse.SseParser();
      const events: any[] = [];
      for (let i = 0; i < raw.length; i += 7) events.push(...parser.push(raw.slice(i, i + 7)));
      assert.equal(events[0].event, 'task.queued');
      const last = events[events.length - 1];
      assert.equal(last.event, 'task.completed');
      assert.equal(JSON.parse(last.data).result, created.body.result);
    } finally {
      await agentd.close();
      await mock.close();
    }
  });
});

describe('dashboard: task output from events', () => {
  const run = (events: [string, Record<string, unknown>][]) => {
    const output = new sse.TaskOutput();
    for (const [type, data] of events) output.apply(type, data);
    return output.text;
  };

  it('drops the text of a discarded attempt, keeping earlier model calls', () => {
    const text = run([
      ['task.started', {}],
      ['llm.started', { iteration: 1 }],
      ['llm.delta', { text: 'Let me compute. ' }],
      ['llm.completed', {}],
      ['tool.started', { name: 'calculator' }],
      ['tool.completed', { ok: true }],
      ['llm.started', { iteration: 2 }],
      ['llm.delta', { text: 'The answ' }],
      ['llm.discarded', { code: 'AGENTD_PROVIDER_STREAM_TRUNCATED' }],
      ['llm.delta', { text: 'It is ' }],
      ['llm.delta', { text: '42.' }],
    ]);
    assert.equal(text, 'Let me compute. It is 42.');
  });

  it('ends with the stored result', () => {
    assert.equal(
      run([
        ['llm.started', {}],
        ['llm.delta', { text: 'partial' }],
        ['task.completed', { status: 'succeeded', result: 'final answer' }],
      ]),
      'final answer',
    );
    assert.equal(
      run([
        ['llm.delta', { text: 'kept' }],
        ['task.completed', { status: 'failed', result: null }],
      ]),
      'kept',
    );
  });
});
