import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { MockLlmServer } from '../../src/llm/index.js';
import { call, readSse, startAgentd, type TestAgentd } from '../helpers/agentd.js';

/** Fields that differ between any two runs (ids and clocks); everything else must match. */
function comparable(body: unknown): unknown {
  return JSON.parse(JSON.stringify(body), (key, value) =>
    key === 'id' || key.endsWith('_at') ? '<varies>' : value,
  );
}

// `POST /v1/agents/{name}/run` is served on node:http directly (src/server/run-route.ts) and falls
// back to the Fastify route for requests it does not take; a query string always goes to Fastify,
// so the same request with and without `?via=fastify` must be answered alike.
describe('the direct run route answers as the Fastify route does', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;

  before(async () => {
    mock = await MockLlmServer.start();
    agentd = await startAgentd({
      config: {
        providers: { mock: { type: 'mock', base_url: mock.url } },
        models: { 'mock-medium': { provider: 'mock' } },
        tiers: { small: ['mock-medium'], medium: ['mock-medium'], large: ['mock-medium'] },
        server: { body_limit_bytes: 4096 },
        tasks: { max_input_chars: 1000 },
        agents: { assistant: { tools: ['calculator'], system_prompt: 'Use the calculator.' } },
      },
    });
  });
  after(async () => {
    await agentd.close();
    await mock.close();
  });

  const cases: [string, string, unknown][] = [
    ['a successful run', 'assistant', { input: 'What is 2+3?' }],
    ['a run with metadata and a user', 'assistant', { input: 'hi', user_id: 'u1', metadata: { a: 1 } }],
    ['a missing field', 'assistant', {}],
    ['an unknown field', 'assistant', { input: 'x', imput: 'typo' }],
    ['a wrong type', 'assistant', { input: 42 }],
    ['malformed JSON', 'assistant', '{"input": "x"'],
    ['an empty body', 'assistant', ''],
    ['a non-object body', 'assistant', '"just a string"'],
    ['prototype poisoning', 'assistant', '{"input":"x","__proto__":{"admin":true}}'],
    ['constructor poisoning', 'assistant', '{"input":"x","constructor":{"prototype":{"a":1}}}'],
    ['an input over max_input_chars', 'assistant', { input: 'x'.repeat(2000) }],
    ['a body over the limit', 'assistant', { input: 'x'.repeat(10_000) }],
    ['an unknown agent', 'nobody', { input: 'x' }],
    ['an unknown model', 'assistant', { input: 'x', model: 'gpt-imaginary' }],
    ['a forbidden tool', 'assistant', { input: 'x', tools: ['http_fetch'] }],
  ];
  for (const [what, agent, body] of cases) {
    it(`${what}: same status, body and content type`, async () => {
      const direct = await call(agentd.url, 'POST', `/v1/agents/${agent}/run`, body);
      const framework = await call(agentd.url, 'POST', `/v1/agents/${agent}/run?via=fastify`, body);
      assert.equal(direct.status, framework.status);
      assert.deepEqual(comparable(direct.body), comparable(framework.body));
      assert.equal(direct.headers['content-type'], framework.headers['content-type']);
      assert.equal(direct.headers['retry-after'], framework.headers['retry-after']);
      assert.equal(
        direct.headers['x-agentd-overhead-ms'] === undefined,
        framework.headers['x-agentd-overhead-ms'] === undefined,
      );
    });
  }

  it('reports its own overhead on a successful run', async () => {
    const res = await call(agentd.url, 'POST', '/v1/agents/assistant/run', { input: 'What is 2+3?' });
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'succeeded');
    assert.ok(Number(res.headers['x-agentd-overhead-ms']) >= 0);
  });

  it('streams a run as SSE when asked', async () => {
    const res = await readSse(`${agentd.url}/v1/agents/assistant/run`, {
      method: 'POST',
      body: { input: 'What is 2+3?', stream: true },
      until: (e) => e.event === 'task.completed',
    });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /text\/event-stream/);
    assert.equal(res.events.at(-1)?.event, 'task.completed');
    assert.equal(res.events.at(-1)?.data.status, 'succeeded');
  });

  it('takes a JSON body with a charset, and leaves other media types to Fastify (415)', async () => {
    const charset = await call(
      agentd.url,
      'POST',
      '/v1/agents/assistant/run',
      { input: 'hi' },
      {
        'content-type': 'application/json; charset=utf-8',
      },
    );
    assert.equal(charset.status, 200);
    const text = await call(agentd.url, 'POST', '/v1/agents/assistant/run', 'input=x', {
      'content-type': 'text/plain',
    });
    assert.equal(text.status, 415);
  });

  it('reads a chunked body through Fastify', async () => {
    const res = await request(`${agentd.url}/v1/agents/assistant/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Readable.from([Buffer.from('{"input":'), Buffer.from('"hi"}')]),
    });
    assert.equal(res.statusCode, 200);
    assert.equal(((await res.body.json()) as { status: string }).status, 'succeeded');
  });

  it('authenticates as the Fastify route does once API keys exist', async () => {
    const { key } = await agentd.runtime.keys.create({ tenant: 'run-route', agents: ['assistant'] });
    const body = { input: 'hi' };
    const missing = await call(agentd.url, 'POST', '/v1/agents/assistant/run', body);
    assert.equal(missing.status, 401);
    assert.equal(missing.headers['www-authenticate'], 'Bearer');
    const unknown = await call(agentd.url, 'POST', '/v1/agents/assistant/run', body, {
      authorization: 'Bearer agentd_nope',
    });
    assert.equal(unknown.status, 401);
    assert.equal(unknown.body.error.code, 'AGENTD_UNAUTHORIZED');
    const known = await call(agentd.url, 'POST', '/v1/agents/assistant/run', body, {
      authorization: `Bearer ${key}`,
    });
    assert.equal(known.status, 200);
    assert.equal(known.body.status, 'succeeded');
    const stored = await agentd.runtime.store.getTask(known.body.id);
    assert.equal(stored?.tenant_id, 'run-route');
  });
});
