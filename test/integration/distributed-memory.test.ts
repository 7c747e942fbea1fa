import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MockLlmServer } from '../../src/llm/index.js';
import { call } from '../helpers/agentd.js';
import { TestCluster } from '../helpers/cluster.js';

describe('distributed: long-term memories shared through Postgres', () => {
  let mock: MockLlmServer;
  let cluster: TestCluster;

  before(async () => {
    mock = await MockLlmServer.start();
    cluster = new TestCluster({
      providers: { mock: { type: 'mock', base_url: mock.url } },
      models: { quick: { provider: 'mock', name: 'mock' } },
      tiers: { small: ['quick'], medium: ['quick'], large: ['quick'] },
      agents: { writer: { model: 'quick' } },
    });
  });
  after(async () => {
    await cluster?.close();
    await mock.close();
  });

  it('a memory added on one node is found on another; updates and deletes travel back', async () => {
    const [a, b] = await Promise.all([cluster.start('a'), cluster.start('b')]);
    const created = await call(a.url, 'POST', '/v1/memories', {
      text: 'Lin takes the night train to Vienna every spring',
      user_id: 'lin',
      tags: ['travel'],
      metadata: { source: 'chat', confidence: 0.9 },
    });
    assert.equal(created.status, 201);
    const id = created.body.id as string;

    // Node B never saw the write: its search (every mode, filtered) finds it all the same.
    for (const mode of ['hybrid', 'semantic', 'fulltext', 'exact'] as const) {
      const found = await call(b.url, 'POST', '/v1/memories/search', {
        text: mode === 'exact' ? 'night train' : 'train Vienna',
        mode,
        filter: { user_id: 'lin', tags: ['travel'], metadata: { confidence: { gte: 0.5 } } },
      });
      assert.equal(found.status, 200, JSON.stringify(found.body));
      assert.deepEqual(
        found.body.data.map((hit: { memory: { id: string } }) => hit.memory.id),
        [id],
        mode,
      );
    }
    assert.equal((await call(b.url, 'GET', `/v1/memories/${id}`)).body.text, created.body.text);

    const patched = await call(b.url, 'PATCH', `/v1/memories/${id}`, { text: 'Lin now flies to Lisbon' });
    assert.equal(patched.status, 200);
    const moved = await call(a.url, 'POST', '/v1/memories/search', {
      text: 'Lisbon',
      mode: 'semantic',
      top_k: 1,
    });
    assert.equal(moved.body.data[0]?.memory.text, 'Lin now flies to Lisbon');
    const old = await call(a.url, 'POST', '/v1/memories/search', { text: 'Vienna train', mode: 'fulltext' });
    assert.equal(old.body.data.length, 0);
    const history = await call(a.url, 'GET', `/v1/memories/${id}/history`);
    assert.deepEqual(
      history.body.data.map((h: { action: string }) => h.action),
      ['add', 'update'],
    );

    assert.equal((await call(b.url, 'DELETE', `/v1/memories/${id}`)).body.deleted, true);
    for (const mode of ['hybrid', 'semantic'] as const) {
      const gone = await call(a.url, 'POST', '/v1/memories/search', { text: 'Lin Lisbon', mode });
      assert.equal(gone.body.data.length, 0, mode);
    }
    assert.equal((await call(a.url, 'GET', `/v1/memories/${id}`)).status, 404);
  });
});
