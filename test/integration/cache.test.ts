import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Type from 'typebox';
import { MockLlmServer } from '../../src/llm/index.js';
import { defineTool } from '../../src/tools/index.js';
import { call, readSse, startAgentd, type TestAgentd } from '../helpers/agentd.js';

describe('response and tool caches over HTTP', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;
  let lookups = 0;

  before(async () => {
    mock = await MockLlmServer.start();
    const lookup = defineTool({
      name: 'lookup',
      description: 'a slow, pure lookup',
      parameters: Type.Object({ id: Type.String() }),
      cacheTtlMs: 60_000,
      handler: ({ id }) => {
        lookups++;
        return { id, value: id.toUpperCase() };
      },
    });
    agentd = await startAgentd({
      tools: [lookup],
      config: {
        providers: { mock: { type: 'mock', base_url: mock.url } },
        models: {
          m: { provider: 'mock', name: 'mock?tokens=8', input_usd_per_mtok: 1, output_usd_per_mtok: 1 },
        },
        tiers: { small: ['m'], medium: ['m'], large: ['m'] },
        agents: {
          exact: { temperature: 0, tools: [] },
          creative: { temperature: 0.8, tools: [] },
          fetcher: { model: 'mock/mock?call=lookup&args={"id":"abc"}', tools: ['lookup'] },
        },
      },
    });
  });
  after(async () => {
    await agentd.close();
    await mock.close();
  });

  it('replays a deterministic answer from the cache: same text, streamed, free, marked cached', async () => {
    const before = mock.requests('mock?tokens=8');
    const first = await call(agentd.url, 'POST', '/v1/agents/exact/run', { input: 'What is agentd?' });
    const { events } = await readSse(`${agentd.url}/v1/agents/exact/run`, {
      method: 'POST',
      body: { input: 'What is agentd?', stream: true },
    });
    assert.equal(mock.requests('mock?tokens=8') - before, 1, 'one model call for two tasks');
    const completed = events.find((e) => e.event === 'llm.completed')!;
    assert.equal(completed.data.cached, true);
    assert.equal(completed.data.cost_usd, 0);
    const deltas = events.filter((e) => e.event === 'llm.delta');
    assert.ok(deltas.length > 1, 'replayed as a stream');
    const final = events.at(-1)!.data;
    assert.equal(final.result, first.body.result);
    assert.equal(final.cost_usd, 0, 'a cached answer costs nothing');
    assert.ok(first.body.cost_usd > 0);
  });

  it('never shares cached answers between tenants, and does not cache non-deterministic requests', async () => {
    const keyA = (await agentd.runtime.keys.create({ tenant: 'a' })).key;
    const keyB = (await agentd.runtime.keys.create({ tenant: 'b' })).key;
    const before = mock.requests('mock?tokens=8');
    for (const key of [keyA, keyB, keyA]) {
      await call(
        agentd.url,
        'POST',
        '/v1/agents/exact/run',
        { input: 'tenant question' },
        { authorization: `Bearer ${key}` },
      );
    }
    assert.equal(mock.requests('mock?tokens=8') - before, 2, "tenant b did not get tenant a's answer");
    const creativeBefore = mock.requests('mock?tokens=8');
    for (let i = 0; i < 2; i++) {
      await call(
        agentd.url,
        'POST',
        '/v1/agents/creative/run',
        { input: 'same' },
        { authorization: `Bearer ${keyA}` },
      );
    }
    assert.equal(mock.requests('mock?tokens=8') - creativeBefore, 2);
    const optedIn = mock.requests('mock?tokens=8');
    for (let i = 0; i < 2; i++) {
      await call(
        agentd.url,
        'POST',
        '/v1/agents/creative/run',
        { input: 'opt in', cache: true },
        { authorization: `Bearer ${keyA}` },
      );
    }
    assert.equal(mock.requests('mock?tokens=8') - optedIn, 1, 'cache: true opts a request in');
  });

  it('reuses a cacheable tool result for equal arguments', async () => {
    const key = (await agentd.runtime.keys.create({ tenant: 'tools' })).key;
    const before = lookups;
    for (let i = 0; i < 3; i++) {
      const res = await call(
        agentd.url,
        'POST',
        '/v1/agents/fetcher/run',
        { input: `look ${i}` },
        { authorization: `Bearer ${key}` },
      );
      assert.match(res.body.result, /ABC/);
    }
    assert.equal(lookups - before, 1);
    const metrics = await (await fetch(`${agentd.url}/metrics`)).text();
    assert.match(metrics, /agentd_cache_requests_total\{cache="tool_result",level="l1",result="hit"\} 2/);
    assert.match(metrics, /agentd_cache_requests_total\{cache="llm_response",level="l1",result="hit"\}/);
  });
});
