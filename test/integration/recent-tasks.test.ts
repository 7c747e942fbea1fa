import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { MockLlmServer } from '../../src/llm/index.js';
import { DEFAULT_TENANT } from '../../src/runtime/index.js';
import { call, readSse, startAgentd, type TestAgentd } from '../helpers/agentd.js';

describe('Finished tasks kept in memory (tasks.recent_limit)', () => {
  let mock: MockLlmServer;
  let keeping: TestAgentd;
  let keepingNone: TestAgentd;
  let keepingOne: TestAgentd;

  before(async () => {
    mock = await MockLlmServer.start();
    const config = (recentLimit?: number) => ({
      providers: { mock: { type: 'mock', base_url: mock.url } },
      models: { chat: { provider: 'mock', name: 'chat' } },
      tiers: { small: ['chat'], medium: ['chat'], large: ['chat'] },
      agents: { plain: { model: 'chat' }, assistant: { model: 'chat', tools: ['calculator'] } },
      ...(recentLimit === undefined ? {} : { tasks: { recent_limit: recentLimit } }),
    });
    keeping = await startAgentd({ config: config() });
    keepingNone = await startAgentd({ config: config(0) });
    keepingOne = await startAgentd({ config: config(1) });
  });
  after(async () => {
    await keeping.close();
    await keepingNone.close();
    await keepingOne.close();
    await mock.close();
  });

  const run = async (agentd: TestAgentd, agent: string, input: string) => {
    const response = await call(agentd.url, 'POST', `/v1/agents/${agent}/run`, { input });
    assert.equal(response.status, 200);
    assert.equal(response.body.status, 'succeeded');
    return response.body;
  };
  const eventTypes = async (agentd: TestAgentd, id: string) =>
    (await readSse(`${agentd.url}/v1/tasks/${id}/events`)).events.map((e) => e.event);

  it('by default replays a finished task’s whole event log from memory', async () => {
    const task = await run(keeping, 'assistant', 'What is 17*23?');
    assert.ok(keeping.runtime.liveTask(task.id, DEFAULT_TENANT), 'kept among the recent tasks');
    const types = await eventTypes(keeping, task.id);
    assert.equal(types[0], 'task.queued');
    assert.ok(types.includes('tool.started'), `tool activity replayed: ${types.join(', ')}`);
    assert.equal(types.at(-1), 'task.completed');
  });

  it('with 0 keeps no finished task: reads and replay come from storage', async () => {
    const task = await run(keepingNone, 'assistant', 'What is 17*23?');
    assert.equal(keepingNone.runtime.liveTask(task.id, DEFAULT_TENANT), undefined, 'not kept in memory');

    const read = await call(keepingNone.url, 'GET', `/v1/tasks/${task.id}`);
    assert.equal(read.status, 200);
    assert.deepEqual(read.body, task, 'the stored task is the one the run answered');

    const { events } = await readSse(`${keepingNone.url}/v1/tasks/${task.id}/events`);
    assert.deepEqual(
      events.map((e) => e.event),
      ['task.completed'],
      'only the final event replays',
    );
    assert.equal(events[0]!.data.status, 'succeeded');
    assert.equal(events[0]!.data.result, task.result);
  });

  it('keeps at most the limit, newest first', async () => {
    const first = await run(keepingOne, 'plain', 'hello');
    const second = await run(keepingOne, 'plain', 'hello again');
    assert.equal(
      keepingOne.runtime.liveTask(first.id, DEFAULT_TENANT),
      undefined,
      'the older one left memory',
    );
    assert.ok(keepingOne.runtime.liveTask(second.id, DEFAULT_TENANT), 'the newest is kept');
    assert.deepEqual(await eventTypes(keepingOne, first.id), ['task.completed']);
    assert.equal((await eventTypes(keepingOne, second.id))[0], 'task.queued');
  });

  it('rejects a negative limit, naming the field', () => {
    assert.throws(
      () => loadConfig({ config: { tasks: { recent_limit: -1 } }, env: {}, cwd: '/nonexistent' }),
      /tasks\.recent_limit/,
    );
  });
});
