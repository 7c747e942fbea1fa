import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MockLlmServer } from '../../src/llm/index.js';
import { call, startAgentd, type TestAgentd, tempDir } from '../helpers/agentd.js';

describe('memory over HTTP', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;
  const dir = tempDir('agentd-memory-http-');
  const dbPath = join(dir.path, 'agentd.db');
  const rememberArgs = encodeURIComponent(JSON.stringify({ text: 'The user is allergic to peanuts' }));
  const config = () => ({
    providers: { mock: { type: 'mock', base_url: mock.url } },
    models: {
      quick: { provider: 'mock', name: 'mock' },
      remembering: { provider: 'mock', name: `mock?call=remember&args=${rememberArgs}` },
    },
    tiers: { medium: ['quick'] },
    agents: {
      recaller: { model: 'quick', memory: { recall: true, scope: 'user', top_k: 3, max_tokens: 200 } },
      keeper: { model: 'remembering', tools: ['remember', 'recall'] },
    },
  });

  before(async () => {
    mock = await MockLlmServer.start();
    agentd = await startAgentd({ dbPath, config: config() });
  });
  after(async () => {
    await agentd.close();
    await mock.close();
    dir.remove();
  });

  it('creates, reads, updates, searches, audits and deletes a memory', async () => {
    const created = await call(agentd.url, 'POST', '/v1/memories', {
      text: 'Grace likes hiking in the Alps',
      user_id: 'grace',
      tags: ['hobby'],
      metadata: { source: 'chat', confidence: 0.8 },
      expires_at: '2999-01-01T00:00:00.000Z',
    });
    assert.equal(created.status, 201);
    const id = created.body.id as string;
    assert.equal(created.body.expires_at, '2999-01-01T00:00:00.000Z');

    const got = await call(agentd.url, 'GET', `/v1/memories/${id}`);
    assert.equal(got.body.text, 'Grace likes hiking in the Alps');

    const patched = await call(agentd.url, 'PATCH', `/v1/memories/${id}`, { text: 'Grace likes sailing' });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.text, 'Grace likes sailing');

    const search = await call(agentd.url, 'POST', '/v1/memories/search', {
      text: 'sailing',
      filter: { user_id: 'grace', tags: ['hobby'], metadata: { confidence: { gte: 0.5 } } },
    });
    assert.equal(search.status, 200);
    assert.equal(search.body.mode, 'hybrid');
    assert.equal(search.body.data[0].memory.id, id);
    assert.ok(search.body.data[0].scores.fulltext.rank >= 1);
    assert.ok(search.body.data[0].scores.semantic.score > 0);

    const history = await call(agentd.url, 'GET', `/v1/memories/${id}/history`);
    assert.deepEqual(
      history.body.data.map((h: { action: string }) => h.action),
      ['add', 'update'],
    );
    assert.equal(history.body.data[1].old.text, 'Grace likes hiking in the Alps');

    const deleted = await call(agentd.url, 'DELETE', `/v1/memories/${id}`);
    assert.equal(deleted.body.deleted, true);
    assert.equal((await call(agentd.url, 'GET', `/v1/memories/${id}`)).status, 404);
    assert.equal((await call(agentd.url, 'DELETE', `/v1/memories/${id}`)).status, 404);
    const after = await call(agentd.url, 'POST', '/v1/memories/search', { text: 'sailing' });
    assert.equal(after.body.data.length, 0);
  });

  it('answers bad input with a 4xx naming the field', async () => {
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/v1/memories', { text: '' }, 400, 'text'],
      ['POST', '/v1/memories', { text: 'x', importance: 3 }, 400, 'importance'],
      ['POST', '/v1/memories', { text: 'x', colour: 'red' }, 400, 'colour'],
      ['POST', '/v1/memories', { text: 'x', expires_at: 'next tuesday' }, 400, 'expires_at'],
      ['POST', '/v1/memories', { text: 'x', embedding: [1, 2] }, 400, 'embedding'],
      ['POST', '/v1/memories/batch', { memories: [{ text: 'ok' }, { text: 'y', tags: 'no' }] }, 400, 'tags'],
      ['POST', '/v1/memories/search', { text: 'x', mode: 'fuzzy' }, 400, 'mode'],
      ['POST', '/v1/memories/search', { text: 'x', filter: { metadata: { n: { near: 1 } } } }, 400, 'near'],
      ['POST', '/v1/memories/search', { text: 'x', filter: { created_after: 'soon' } }, 400, 'created_after'],
      ['POST', '/v1/memories/search', { mode: 'fulltext' }, 400, 'text'],
      ['PATCH', '/v1/memories/none', { text: 'x' }, 404, ''],
    ];
    for (const [method, path, body, status, field] of cases) {
      const res = await call(agentd.url, method as 'POST', path, body);
      assert.equal(res.status, status, `${path} ${JSON.stringify(body)}`);
      assert.ok(
        JSON.stringify(res.body.error).includes(field),
        `${JSON.stringify(res.body.error)} names ${field}`,
      );
    }
  });

  it('loses nothing under concurrent writers and readers', async () => {
    const writers = Array.from({ length: 16 }, (_, w) =>
      (async () => {
        for (let i = 0; i < 8; i++) {
          const res = await call(agentd.url, 'POST', '/v1/memories', {
            text: `writer ${w} fact ${i} about concurrency`,
            user_id: 'load',
            metadata: { w, i },
          });
          assert.equal(res.status, 201);
        }
        const batch = await call(agentd.url, 'POST', '/v1/memories/batch', {
          memories: Array.from({ length: 5 }, (_, j) => ({
            text: `writer ${w} batch ${j}`,
            user_id: 'load',
          })),
        });
        assert.equal(batch.status, 201);
      })(),
    );
    const readers = Array.from({ length: 8 }, () =>
      (async () => {
        for (let i = 0; i < 10; i++) {
          const res = await call(agentd.url, 'POST', '/v1/memories/search', {
            text: 'concurrency fact',
            filter: { user_id: 'load' },
          });
          assert.equal(res.status, 200);
        }
      })(),
    );
    await Promise.all([...writers, ...readers]);
    const ids = new Set<string>();
    let cursor: string | null = null;
    do {
      const page: { body: { data: { id: string }[]; next_cursor: string | null } } = await call(
        agentd.url,
        'GET',
        `/v1/memories?user_id=load&limit=50${cursor === null ? '' : `&cursor=${cursor}`}`,
      );
      for (const m of page.body.data) ids.add(m.id);
      cursor = page.body.next_cursor;
    } while (cursor !== null);
    assert.equal(ids.size, 16 * 13);
    const all = await call(agentd.url, 'POST', '/v1/memories/search', {
      text: 'writer',
      mode: 'semantic',
      filter: { user_id: 'load' },
      top_k: 1000,
    });
    assert.equal(all.body.data.length, 16 * 13);
  });

  it('recalls memories into an agent task and shows them in an event', async () => {
    const added = await call(agentd.url, 'POST', '/v1/memories', {
      text: 'Ada prefers answers in French',
      user_id: 'ada',
    });
    await call(agentd.url, 'POST', '/v1/memories', { text: 'Bob prefers answers in German', user_id: 'bob' });
    const { task } = await agentd.runtime.submit({
      agent: 'recaller',
      input: 'In which language should answers be?',
      userId: 'ada',
    });
    await task.wait();
    const events = task.events.subscribe(0, () => {}).backlog;
    const recalled = events.find((e) => e.type === 'memory.recalled');
    assert.ok(recalled);
    const memories = (recalled.data as { memories: { id: string }[] }).memories;
    assert.deepEqual(
      memories.map((m) => m.id),
      [added.body.id],
    );
  });

  it('lets the model remember through the tool, without duplicates', async () => {
    for (let i = 0; i < 2; i++) {
      const run = await call(agentd.url, 'POST', '/v1/agents/keeper/run', {
        input: 'Note my allergy',
        user_id: 'cy',
      });
      assert.equal(run.status, 200, JSON.stringify(run.body));
    }
    const list = await call(agentd.url, 'GET', '/v1/memories?user_id=cy');
    assert.equal(list.body.data.length, 1);
    assert.equal(list.body.data[0].text, 'The user is allergic to peanuts');
    assert.equal(list.body.data[0].agent_id, 'keeper');
  });

  it('keeps every memory across a restart', async () => {
    const before = await call(agentd.url, 'GET', '/v1/memories?limit=1000');
    await agentd.close();
    agentd = await startAgentd({ dbPath, config: config() });
    const afterRestart = await call(agentd.url, 'GET', '/v1/memories?limit=1000');
    assert.deepEqual(afterRestart.body.data, before.body.data);
    const search = await call(agentd.url, 'POST', '/v1/memories/search', { text: 'peanuts allergy' });
    assert.equal(search.body.data[0].memory.text, 'The user is allergic to peanuts');
  });
});
