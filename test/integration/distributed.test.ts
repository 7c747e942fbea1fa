import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MockLlmServer } from '../../src/llm/index.js';
import { call, readSse } from '../helpers/agentd.js';
import { type ClusterNode, TestCluster } from '../helpers/cluster.js';

/** Polls a task on `node` until `done(task)` holds (bounded). */
async function until(
  node: ClusterNode,
  id: string,
  done: (task: any) => boolean,
  timeoutMs = 60_000,
): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await call(node.url, 'GET', `/v1/tasks/${id}`);
    if (res.status === 200 && done(res.body)) return res.body;
    if (Date.now() > deadline)
      throw new Error(`task ${id} never reached the state: ${JSON.stringify(res.body)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const finished = (task: any): boolean => ['succeeded', 'failed', 'cancelled'].includes(task.status);

describe('distributed: several agentd processes sharing Redis and Postgres', () => {
  let mock: MockLlmServer;
  let cluster: TestCluster;
  const config = () => ({
    providers: { mock: { type: 'mock', base_url: mock.url } },
    models: { quick: { provider: 'mock', name: 'mock' } },
    tiers: { small: ['quick'], medium: ['quick'], large: ['quick'] },
    agents: {
      writer: { model: 'quick' },
      careful: { model: 'quick', on_interrupt: 'fail' },
    },
    distributed: { lock_duration_ms: 1500, stalled_interval_ms: 500, reconcile_interval_ms: 500 },
  });

  before(async () => {
    mock = await MockLlmServer.start();
  });
  after(async () => {
    await cluster?.close();
    await mock.close();
  });

  it('runs tasks submitted round-robin to three nodes, each exactly once', async () => {
    cluster = new TestCluster(config());
    const nodes = await Promise.all(['a', 'b', 'c'].map((name) => cluster.start(name)));
    const ids: string[] = [];
    const models: string[] = [];
    for (let i = 0; i < 30; i++) {
      const node = nodes[i % nodes.length]!;
      const model = `mock/mock?tokens=5&interval_ms=5&id=rr${i}`;
      models.push(model);
      const res = await call(node.url, 'POST', '/v1/tasks', {
        agent: 'writer',
        input: `task ${i}`,
        model,
        priority: i % 3,
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      ids.push(res.body.id);
    }
    for (const [i, id] of ids.entries()) {
      // Read back from a node other than the one that accepted it.
      const task = await until(nodes[(i + 1) % nodes.length]!, id, finished);
      assert.equal(task.status, 'succeeded', JSON.stringify(task));
      assert.equal(task.attempt, 1);
    }
    for (const model of models) assert.equal(mock.requests(model.slice('mock/'.length)), 1, model);
    // Waiting on a node for a task another node runs returns its final state.
    const waited = await call(nodes[0]!.url, 'POST', '/v1/tasks', {
      agent: 'writer',
      input: 'wait for me',
      model: 'mock/mock?tokens=3&id=waited',
      wait: 30_000,
    });
    assert.equal(waited.status, 200, JSON.stringify(waited.body));
    assert.equal(waited.body.status, 'succeeded');
    const listed = await call(nodes[2]!.url, 'GET', '/v1/tasks?limit=100');
    assert.equal(listed.body.data.length, 31, 'every node lists every task');
  });

  it('streams events from any node and resumes with Last-Event-ID on another', async () => {
    const [a, b] = cluster.nodes as [ClusterNode, ClusterNode];
    const created = await call(a.url, 'POST', '/v1/tasks', {
      agent: 'writer',
      input: 'stream',
      model: 'mock/mock?tokens=30&interval_ms=20&id=sse',
    });
    const id = created.body.id as string;
    const first = await readSse(`${a.url}/v1/tasks/${id}/events`, {
      until: (event) => event.event === 'llm.delta',
    });
    const lastId = first.events[first.events.length - 1]!.id!;
    const rest = await readSse(`${b.url}/v1/tasks/${id}/events`, { headers: { 'last-event-id': lastId } });
    assert.equal(rest.status, 200);
    const all = [...first.events, ...rest.events];
    assert.deepEqual(
      all.map((e) => e.event).filter((type) => type.startsWith('task.')),
      ['task.queued', 'task.started', 'task.completed'],
    );
    const ids = all.map((e) => Number(e.id));
    assert.deepEqual(
      ids,
      [...ids].sort((x, y) => x - y),
      'ids increase',
    );
    assert.equal(new Set(ids).size, ids.length, 'no event twice');
    const text = all
      .filter((e) => e.event === 'llm.delta')
      .map((e) => e.data.text)
      .join('');
    const completed = all[all.length - 1]!;
    assert.equal(completed.event, 'task.completed');
    assert.equal(text, completed.data.result, 'the deltas across both nodes add up to the answer');
  });

  it('cancels a task running on another node', async () => {
    const [a] = cluster.nodes as [ClusterNode];
    for (const node of cluster.nodes.slice(1)) await cluster.kill(node);
    cluster.nodes.splice(1);
    const created = await call(a.url, 'POST', '/v1/tasks', {
      agent: 'writer',
      input: 'long',
      // ≈ 17 minutes of stream: it cannot finish while another node starts on a loaded machine;
      // the cancel ends it.
      model: 'mock/mock?tokens=50000&interval_ms=20&id=cancel',
    });
    const id = created.body.id as string;
    await until(a, id, (task) => task.status === 'running');
    const b = await cluster.start('b2');
    const cancelled = await call(b.url, 'POST', `/v1/tasks/${id}/cancel`);
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.status, 'cancelled', JSON.stringify(cancelled.body));
    const seen = await call(a.url, 'GET', `/v1/tasks/${id}`);
    assert.equal(seen.body.status, 'cancelled');
  });

  it('finishes the tasks of a node killed with -9 on another node, per on_interrupt', async () => {
    const [a, b] = cluster.nodes as [ClusterNode, ClusterNode];
    await cluster.kill(b);
    cluster.nodes.splice(1);
    const retried = await call(a.url, 'POST', '/v1/tasks', {
      agent: 'writer',
      input: 'survive',
      model: 'mock/mock?tokens=300&interval_ms=25&id=kill-retry',
    });
    const failed = await call(a.url, 'POST', '/v1/tasks', {
      agent: 'careful',
      input: 'do not repeat',
      model: 'mock/mock?tokens=300&interval_ms=25&id=kill-fail',
    });
    const retriedId = retried.body.id as string;
    const failedId = failed.body.id as string;
    await until(a, retriedId, (task) => task.status === 'running');
    await until(a, failedId, (task) => task.status === 'running');
    const before = await readSse(`${a.url}/v1/tasks/${retriedId}/events`, {
      until: (event) => event.event === 'llm.delta',
    });
    // Nothing runs the two tasks until a new node starts: it finds their jobs' locks expired.
    await cluster.kill(a);
    const c = await cluster.start('c2');
    const survived = await until(c, retriedId, finished);
    assert.equal(survived.status, 'succeeded', JSON.stringify(survived));
    assert.equal(survived.attempt, 2, 'ran again on the surviving node');
    const refused = await until(c, failedId, finished);
    assert.equal(refused.status, 'failed');
    assert.equal(refused.error.code, 'AGENTD_INTERRUPTED');
    // The SSE client resumes on the survivor: the restarted run from its start, then the end.
    const lastId = before.events[before.events.length - 1]!.id!;
    const resumed = await readSse(`${c.url}/v1/tasks/${retriedId}/events`, {
      headers: { 'last-event-id': lastId },
    });
    const types = resumed.events.map((e) => e.event);
    assert.equal(types[0], 'task.queued');
    assert.equal(resumed.events[0]!.data.recovered, true);
    assert.equal(resumed.events[0]!.id, '2.1');
    assert.equal(types[types.length - 1], 'task.completed');
    const text = resumed.events
      .filter((e) => e.event === 'llm.delta')
      .map((e) => e.data.text)
      .join('');
    assert.equal(text, survived.result);
  });
});
