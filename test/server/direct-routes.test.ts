import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { MockLlmServer } from '../../src/llm/index.js';
import { call, oneMockModel, readSse, startAgentd, type TestAgentd } from '../helpers/agentd.js';

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
        ...oneMockModel(mock.url, 'mock-medium'),
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
      assert.equal(direct.headers.connection, framework.headers.connection);
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

/** The varying parts of a completion (ids, clocks) masked; every other byte must match. */
function maskedText(text: string): string {
  return text
    .replace(/"(id|task_id|session_id)":"[^"]*"/g, '"$1":"<varies>"')
    .replace(/"created":\d+/g, '"created":0')
    .replace(/"(\w+_at|\w+_ms)":[\d.]+/g, '"$1":0');
}

/** The headers a client acts on. */
const MEANINGFUL_HEADERS = [
  'content-type',
  'content-length',
  'transfer-encoding',
  'cache-control',
  'connection',
  'x-accel-buffering',
  'retry-after',
  'www-authenticate',
];

interface RawAnswer {
  status: number;
  headers: Record<string, unknown>;
  text: string;
}

async function post(
  base: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<RawAnswer> {
  const res = await request(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  const kept: Record<string, unknown> = {};
  for (const name of MEANINGFUL_HEADERS) kept[name] = res.headers[name];
  // Masked values may differ in length: the length must be the body's, whatever it is.
  if (kept['content-length'] !== undefined)
    kept['content-length'] = Number(kept['content-length']) === Buffer.byteLength(text);
  return { status: res.statusCode, headers: kept, text: maskedText(text) };
}

// `POST /v1/chat/completions` is served on node:http directly as well; `?via=fastify` forces the
// Fastify route. Streamed (SSE) and whole answers, and every error class, must be alike.
describe('the direct chat completions route answers as the Fastify route does', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;

  before(async () => {
    mock = await MockLlmServer.start();
    agentd = await startAgentd({
      config: {
        ...oneMockModel(mock.url, 'mock-medium'),
        llm: { retry: { base_delay_ms: 1, max_delay_ms: 5 } },
        server: { body_limit_bytes: 4096 },
        agents: { assistant: { tools: ['calculator'], system_prompt: 'Use the calculator.' } },
      },
    });
  });
  after(async () => {
    await agentd.close();
    await mock.close();
  });

  const hello = [{ role: 'user', content: 'hello' }];
  const cases: [string, unknown, Record<string, string>?][] = [
    ['a whole reply', { model: 'mock-medium', messages: hello }],
    ['a whole reply through a tier', { model: 'small', messages: hello }],
    ['a streamed reply', { model: 'mock-medium', messages: hello, stream: true }],
    [
      'a streamed reply with usage',
      { model: 'mock-medium', messages: hello, stream: true, stream_options: { include_usage: true } },
    ],
    ['extra fields passed to the provider', { model: 'mock-medium', messages: hello, seed: 7, user: 'u1' }],
    ['a whole agent-mode reply', { model: 'agent:assistant', messages: [{ role: 'user', content: '2+3?' }] }],
    [
      'a streamed agent-mode reply',
      { model: 'agent:assistant', messages: [{ role: 'user', content: '2+3?' }], stream: true },
    ],
    ['a missing model', { messages: hello }],
    ['missing messages', { model: 'mock-medium' }],
    ['empty messages', { model: 'mock-medium', messages: [] }],
    ['an unknown role', { model: 'mock-medium', messages: [{ role: 'robot', content: 'x' }] }],
    ['a temperature out of range', { model: 'mock-medium', messages: hello, temperature: 3 }],
    ['a wrong type', { model: 'mock-medium', messages: hello, stream: 'yes' }],
    ['malformed JSON', '{"model": "mock-medium"'],
    ['an empty body', ''],
    ['a non-object body', '"just a string"'],
    ['prototype poisoning', '{"model":"mock-medium","messages":[],"__proto__":{"admin":true}}'],
    ['constructor poisoning', '{"model":"mock-medium","constructor":{"prototype":{"a":1}}}'],
    [
      'a body over the limit',
      { model: 'mock-medium', messages: [{ role: 'user', content: 'x'.repeat(10_000) }] },
    ],
    ['an unknown model', { model: 'gpt-imaginary', messages: hello }],
    ['an unknown agent', { model: 'agent:nobody', messages: hello }],
    [
      'an agent-mode request without a user message',
      { model: 'agent:assistant', messages: [{ role: 'system', content: 'x' }] },
    ],
    ['a bad session header', { model: 'agent:assistant', messages: hello }, { 'x-agentd-session-id': 'a b' }],
    [
      'a rate-limited provider',
      { model: 'mock/mock?fault=429&retry_after=2&times=1000000', messages: hello },
    ],
    [
      'a failing provider, streamed',
      { model: 'mock/mock?fault=500&times=1000000', messages: hello, stream: true },
    ],
    [
      'a stream cut by the provider',
      { model: 'mock/mock?fault=cut&times=1000000', messages: hello, stream: true },
    ],
    [
      'a provider refusing the context',
      { model: 'mock/mock?fault=context_length&times=1000000', messages: hello },
    ],
  ];
  for (const [what, body, headers] of cases) {
    it(`${what}: same status, headers and bytes`, async () => {
      const direct = await post(agentd.url, '/v1/chat/completions', body, headers);
      const framework = await post(agentd.url, '/v1/chat/completions?via=fastify', body, headers);
      assert.deepEqual(direct, framework);
    });
  }

  it('authenticates as the Fastify route does once API keys exist', async () => {
    const { key } = await agentd.runtime.keys.create({ tenant: 'chat-route' });
    const body = { model: 'mock-medium', messages: hello };
    const presented: Record<string, string>[] = [
      {},
      { authorization: 'Bearer agentd_nope' },
      { authorization: `Bearer ${key}` },
    ];
    for (const headers of presented) {
      const direct = await post(agentd.url, '/v1/chat/completions', body, headers);
      const framework = await post(agentd.url, '/v1/chat/completions?via=fastify', body, headers);
      assert.deepEqual(direct, framework);
    }
    const known = await post(agentd.url, '/v1/chat/completions', body, { authorization: `Bearer ${key}` });
    assert.equal(known.status, 200);
  });
});

describe('the hot routes are answered without Fastify', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;
  const reachedFastify: string[] = [];

  before(async () => {
    mock = await MockLlmServer.start();
    agentd = await startAgentd({
      config: { ...oneMockModel(mock.url, 'mock-medium'), agents: { assistant: { tools: [] } } },
      onFastifyRequest: (url) => reachedFastify.push(url),
    });
  });
  after(async () => {
    await agentd.close();
    await mock.close();
  });

  it('serves a run and a chat completion directly, and a forced one through Fastify', async () => {
    const chat = { model: 'mock-medium', messages: [{ role: 'user', content: 'hi' }] };
    assert.equal((await call(agentd.url, 'POST', '/v1/agents/assistant/run', { input: 'hi' })).status, 200);
    assert.equal((await call(agentd.url, 'POST', '/v1/chat/completions', chat)).status, 200);
    assert.deepEqual(reachedFastify, []);
    assert.equal((await call(agentd.url, 'POST', '/v1/chat/completions?via=fastify', chat)).status, 200);
    assert.deepEqual(reachedFastify, ['/v1/chat/completions?via=fastify']);
  });
});
