import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { MockLlmServer } from '../../src/llm/index.js';
import { DEFAULT_TENANT } from '../../src/runtime/index.js';
import { call, startAgentd, type TestAgentd } from '../helpers/agentd.js';

describe('Task retention (tasks.retention_ms)', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;

  before(async () => {
    mock = await MockLlmServer.start();
    agentd = await startAgentd({
      config: {
        providers: { mock: { type: 'mock', base_url: mock.url } },
        models: {
          chat: { provider: 'mock', name: 'chat' },
          slow: { provider: 'mock', name: 'chat?latency_ms=60000' },
          broken: { provider: 'mock', name: 'chat?fault=500' },
        },
        tiers: { small: ['chat'], medium: ['chat'], large: ['chat'] },
        tasks: { retention_ms: 60_000 },
        agents: { plain: { model: 'chat' }, slow: { model: 'slow' }, broken: { model: 'broken' } },
      },
    });
  });
  after(async () => {
    await agentd.close();
    await mock.close();
  });

  const listed = async (): Promise<string[]> =>
    (await call(agentd.url, 'GET', '/v1/tasks?limit=100')).body.data.map((t: { id: string }) => t.id);

  it('deletes finished tasks once they are older than the retention, and keeps running ones', async () => {
    const done = await call(agentd.url, 'POST', '/v1/agents/plain/run', { input: 'hello' });
    assert.equal(done.body.status, 'succeeded');
    const failed = await call(agentd.url, 'POST', '/v1/tasks', {
      agent: 'broken',
      input: 'hello',
      wait: true,
    });
    assert.equal(failed.body.status, 'failed');
    const running = await call(agentd.url, 'POST', '/v1/tasks', { agent: 'slow', input: 'take your time' });
    assert.equal(running.status, 202);
    assert.deepEqual((await listed()).sort(), [done.body.id, failed.body.id, running.body.id].sort());

    assert.equal(await agentd.runtime.sweepTasks(), 0, 'nothing is a minute old yet');
    assert.equal(
      await agentd.runtime.sweepTasks(Date.now() + 61_000),
      2,
      'the succeeded and the failed task',
    );
    assert.equal(await agentd.runtime.store.getTask(done.body.id), undefined, 'gone from storage');
    assert.deepEqual(await listed(), [running.body.id], 'the running task is kept');

    assert.equal((await call(agentd.url, 'POST', `/v1/tasks/${running.body.id}/cancel`)).status, 200);
    assert.equal(await agentd.runtime.liveTask(running.body.id, DEFAULT_TENANT)?.wait(10_000), true);
    assert.equal((await call(agentd.url, 'GET', `/v1/tasks/${running.body.id}`)).body.status, 'cancelled');
    assert.equal(await agentd.runtime.sweepTasks(Date.now() + 61_000), 1, 'deleted once finished');
    assert.deepEqual(await listed(), []);
  });

  it('rejects a retention under a minute, naming the field', () => {
    assert.throws(
      () => loadConfig({ config: { tasks: { retention_ms: 1000 } }, env: {}, cwd: '/nonexistent' }),
      /tasks\.retention_ms/,
    );
  });
});
