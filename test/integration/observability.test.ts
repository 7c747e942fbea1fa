import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { MockLlmServer } from '../../src/llm/index.js';
import { createLogger } from '../../src/observability/index.js';
import { Runtime } from '../../src/runtime/index.js';
import { buildServer } from '../../src/server/index.js';
import { call, oneMockModel, startAgentd, type TestAgentd, tempDir } from '../helpers/agentd.js';

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  attributes: Record<string, unknown>;
}

/** A tiny OTLP/HTTP JSON receiver: the test's own collector. */
async function startCollector(): Promise<{ url: string; spans: ReceivedSpan[]; server: Server }> {
  const spans: ReceivedSpan[] = [];
  const hex = (id: string | undefined) =>
    id === undefined || id === ''
      ? ''
      : /^[0-9a-f]+$/.test(id)
        ? id
        : Buffer.from(id, 'base64').toString('hex');
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const resource of body.resourceSpans ?? []) {
        for (const scope of resource.scopeSpans ?? []) {
          for (const span of scope.spans ?? []) {
            const attributes: Record<string, unknown> = {};
            for (const attribute of span.attributes ?? []) {
              const value = attribute.value ?? {};
              attributes[attribute.key] =
                value.stringValue ?? value.intValue ?? value.doubleValue ?? value.boolValue;
            }
            spans.push({
              traceId: hex(span.traceId),
              spanId: hex(span.spanId),
              parentSpanId: hex(span.parentSpanId),
              name: span.name,
              attributes,
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, spans, server };
}

describe('observability', () => {
  let mock: MockLlmServer;
  before(async () => {
    mock = await MockLlmServer.start();
  });
  after(() => mock.close());

  describe('metrics', () => {
    let agentd: TestAgentd;
    before(async () => {
      agentd = await startAgentd({
        config: {
          ...oneMockModel(mock.url),
          limits: { tenants: { default: { requests_per_second: 0.001, burst: 3 } } },
        },
      });
    });
    after(() => agentd.close());

    it('exports task, model, token, tool, admission and circuit metrics with Node process metrics', async () => {
      for (let i = 0; i < 3; i++) {
        await call(agentd.url, 'POST', '/v1/agents/assistant/run', { input: 'What is 2+2?' });
      }
      const refused = await call(agentd.url, 'POST', '/v1/agents/assistant/run', { input: 'again' });
      assert.equal(refused.status, 429);
      const res = await request(`${agentd.url}/metrics`);
      assert.match(String(res.headers['content-type']), /text\/plain/);
      const text = await res.body.text();
      const line = (pattern: RegExp) => {
        const match = text.split('\n').find((l) => pattern.test(l));
        assert.ok(match, `no line matching ${pattern}`);
        return Number(match.split(' ').pop());
      };
      assert.equal(line(/^agentd_tasks_total\{agent="assistant",status="succeeded"\}/), 3);
      assert.equal(line(/^agentd_task_duration_seconds_count\{agent="assistant"\}/), 3);
      assert.equal(line(/^agentd_llm_requests_total\{provider="mock",model="m",status="ok"\}/), 6);
      assert.ok(line(/^agentd_llm_tokens_total\{model="m",direction="input"\}/) > 0);
      assert.ok(line(/^agentd_llm_time_to_first_token_seconds_count\{provider="mock",model="m"\}/) >= 6);
      assert.equal(line(/^agentd_tool_calls_total\{tool="calculator",status="ok"\}/), 3);
      assert.equal(line(/^agentd_admission_rejections_total\{reason="tenant.requests_per_second"\}/), 1);
      assert.equal(line(/^agentd_circuit_state\{target="model:m"\}/), 0);
      assert.equal(line(/^agentd_overhead_seconds_count /), 3);
      assert.equal(line(/^agentd_active_tasks /), 0);
      assert.ok(line(/^agentd_cost_usd_total\{tenant="\*",model="m"\}/) >= 0);
      assert.match(text, /^process_cpu_user_seconds_total /m);
      assert.match(text, /^nodejs_eventloop_lag_seconds /m);
    });
  });

  describe('tracing', () => {
    let collector: Awaited<ReturnType<typeof startCollector>>;
    let agentd: TestAgentd;
    before(async () => {
      collector = await startCollector();
      agentd = await startAgentd({
        config: oneMockModel(mock.url),
        env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '50' },
      });
    });
    after(async () => {
      await agentd.close();
      collector.server.close();
    });

    it("continues the client's trace: task → llm.call and tool.call spans, and the provider gets traceparent", async () => {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      const clientSpan = '00f067aa0ba902b7';
      const res = await call(
        agentd.url,
        'POST',
        '/v1/agents/assistant/run',
        { input: 'What is 3*4?' },
        {
          traceparent: `00-${traceId}-${clientSpan}-01`,
        },
      );
      assert.equal(res.body.status, 'succeeded');
      let spans: ReceivedSpan[] = [];
      for (let i = 0; i < 100 && spans.length < 4; i++) {
        spans = collector.spans.filter((s) => s.traceId === traceId);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const task = spans.find((s) => s.name === 'task');
      assert.ok(task, 'a task span');
      assert.equal(task.parentSpanId, clientSpan, "the task span is a child of the client's span");
      assert.equal(task.attributes['agentd.task.id'], res.body.id);
      assert.equal(task.attributes['agentd.status'], 'succeeded');
      const llm = spans.filter((s) => s.name === 'llm.call');
      assert.equal(llm.length, 2);
      for (const span of llm) assert.equal(span.parentSpanId, task.spanId);
      assert.equal(llm[0]!.attributes['gen_ai.response.model'], 'm');
      const tool = spans.find((s) => s.name === 'tool.call');
      assert.equal(tool?.parentSpanId, task.spanId);
      assert.equal(tool?.attributes['agentd.tool'], 'calculator');
      const forwarded = mock.traceparents.filter((t) => t.includes(traceId));
      assert.equal(forwarded.length, 2, 'each provider request carried the trace');
      const llmIds = new Set(llm.map((s) => s.spanId));
      for (const header of forwarded)
        assert.ok(llmIds.has(header.split('-')[2]!), 'the parent is the llm.call span');
    });
  });

  it('never logs API keys, provider keys or Authorization headers', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const dir = tempDir();
    const providerKey = 'sk-provider-secret-1234567890';
    const runtime = await Runtime.create({
      env: {},
      logger: createLogger({ level: 'trace', destination }),
      config: {
        storage: { path: `${dir.path}/db` },
        providers: { mock: { type: 'mock', base_url: mock.url, api_key: providerKey } },
        models: { m: { provider: 'mock', name: 'mock' } },
        tiers: { small: ['m'], medium: ['m'], large: ['m'] },
        observability: { request_log_sample_rate: 1 },
      },
    });
    const app = await buildServer(runtime);
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { key } = await runtime.keys.create({ tenant: 'acme' });
      await call(
        url,
        'POST',
        '/v1/agents/assistant/run',
        { input: 'hi' },
        { authorization: `Bearer ${key}` },
      );
      await call(url, 'GET', '/v1/agents', undefined, { authorization: 'Bearer agd_wrong-key-value' });
      runtime.log.info(
        { config: runtime.config, headers: { authorization: `Bearer ${key}` } },
        'a careless log line',
      );
    } finally {
      await runtime.close({ drainMs: 0 });
      await app.close();
      dir.remove();
    }
    const output = lines.join('');
    assert.ok(output.length > 0, 'something was logged');
    assert.ok(output.includes('"url":"/v1/agents/assistant/run"'), 'requests were logged');
    assert.ok(
      lines.some((line) => line.includes('"reqId":"') && line.includes('"url":"/v1/agents/assistant/run"')),
      "a request's log lines carry its request id",
    );
    for (const secret of [providerKey, 'agd_wrong-key-value'])
      assert.ok(!output.includes(secret), `leaked ${secret}`);
    assert.ok(!/agd_[A-Za-z0-9_-]{32}/.test(output), 'an API key leaked');
    assert.ok(output.includes('[redacted]'), 'secrets in logged objects are redacted');
  });
});
