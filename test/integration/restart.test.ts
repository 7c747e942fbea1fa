import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MockLlmServer } from '../../src/llm/index.js';
import { call, readSse, startAgentd, tempDir } from '../helpers/agentd.js';

describe('restart', () => {
  let mock: MockLlmServer;
  const dir = tempDir('agentd-restart-');
  const dbPath = join(dir.path, 'agentd.db');
  const config = () => ({
    providers: { mock: { type: 'mock', base_url: mock.url } },
    models: {
      slow: { provider: 'mock', name: 'mock?tokens=40&interval_ms=25' },
      quick: { provider: 'mock', name: 'mock' },
    },
    tiers: { medium: ['quick'] },
    agents: {
      retrying: { model: 'slow' },
      careful: { model: 'slow', on_interrupt: 'fail' },
    },
  });

  before(async () => {
    mock = await MockLlmServer.start();
  });
  after(async () => {
    await mock.close();
    dir.remove();
  });

  it('keeps finished tasks, sessions and their final events', async () => {
    const first = await startAgentd({ dbPath, config: config() });
    const run = await call(first.url, 'POST', '/v1/agents/assistant/run', {
      input: 'What is 3*3?',
      session_id: 'kept',
    });
    assert.equal(run.body.result, 'The result is 9.');
    await first.close();

    const second = await startAgentd({ dbPath, config: config() });
    try {
      const task = await call(second.url, 'GET', `/v1/tasks/${run.body.id}`);
      assert.equal(task.body.status, 'succeeded');
      assert.equal(task.body.result, 'The result is 9.');
      const messages = await call(second.url, 'GET', '/v1/sessions/kept/messages');
      assert.equal(messages.body.data.length, 4);
      const { events } = await readSse(`${second.url}/v1/tasks/${run.body.id}/events`);
      assert.deepEqual(
        events.map((e) => e.event),
        ['task.completed'],
      );
      assert.equal(events[0]!.data.status, 'succeeded');
    } finally {
      await second.close();
    }
  });

  it('runs a task that was interrupted again (attempt 2), and resumes its event stream from the new run', async () => {
    const first = await startAgentd({ dbPath, config: config() });
    const created = await call(first.url, 'POST', '/v1/tasks', { agent: 'retrying', input: 'long one' });
    const seen = await readSse(`${first.url}/v1/tasks/${created.body.id}/events`, {
      until: (e) => e.event === 'llm.delta',
    });
    const staleId = seen.events.at(-1)!.id!;
    await first.close();

    const second = await startAgentd({ dbPath, config: config() });
    try {
      const { events } = await readSse(`${second.url}/v1/tasks/${created.body.id}/events`, {
        headers: { 'last-event-id': staleId },
      });
      assert.equal(events[0]!.id, '2.1', 'an id from the first run replays the second run from its start');
      assert.equal(events[0]!.event, 'task.queued');
      assert.equal(events.at(-1)!.event, 'task.completed');
      const task = await call(second.url, 'GET', `/v1/tasks/${created.body.id}`);
      assert.equal(task.body.status, 'succeeded');
      assert.equal(task.body.attempt, 2);
    } finally {
      await second.close();
    }
  });

  it("fails an interrupted task when its agent's policy says so, and runs queued tasks", async () => {
    const first = await startAgentd({ dbPath, config: { ...config(), tasks: { max_concurrency: 1 } } });
    const running = await call(first.url, 'POST', '/v1/tasks', { agent: 'careful', input: 'a' });
    const queued = await call(first.url, 'POST', '/v1/tasks', { agent: 'retrying', input: 'b' });
    await readSse(`${first.url}/v1/tasks/${running.body.id}/events`, {
      until: (e) => e.event === 'llm.delta',
    });
    assert.equal((await call(first.url, 'GET', `/v1/tasks/${queued.body.id}`)).body.status, 'queued');
    await first.close();

    const second = await startAgentd({ dbPath, config: config() });
    try {
      const failed = await call(second.url, 'GET', `/v1/tasks/${running.body.id}`);
      assert.equal(failed.body.status, 'failed');
      assert.equal(failed.body.error.code, 'AGENTD_INTERRUPTED');
      const done = await readSse(`${second.url}/v1/tasks/${queued.body.id}/events`);
      assert.equal(done.events.at(-1)!.data.status, 'succeeded');
      assert.equal((await call(second.url, 'GET', `/v1/tasks/${queued.body.id}`)).body.attempt, 1);
    } finally {
      await second.close();
    }
  });
});
