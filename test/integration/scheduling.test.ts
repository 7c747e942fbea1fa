import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Type from 'typebox';
import { MockLlmServer } from '../../src/llm/index.js';
import { defineTool } from '../../src/tools/index.js';
import { call, readSse, startAgentd, type TestAgentd } from '../helpers/agentd.js';

describe('scheduling over HTTP', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;
  const keys: string[] = [];

  before(async () => {
    mock = await MockLlmServer.start();
    const charge = defineTool({
      name: 'charge',
      description: 'charges a card',
      parameters: Type.Object({ amount: Type.Number() }),
      handler: (_args, ctx) => ({ idempotency_key: ctx.idempotencyKey }),
    });
    agentd = await startAgentd({
      tools: [charge],
      config: {
        providers: { mock: { type: 'mock', base_url: mock.url } },
        models: { slow: { provider: 'mock', name: 'mock?tokens=4&interval_ms=40' } },
        tiers: { small: ['slow'], medium: ['slow'], large: ['slow'] },
        tasks: { max_concurrency: 1, adaptive_concurrency: { enabled: false } },
        agents: { payer: { model: 'mock/mock?call=charge&args={"amount":5}', tools: ['charge'] } },
        limits: { tenants: { vip: { priority: 50 } } },
      },
    });
    for (const tenant of ['a', 'b', 'vip']) keys.push((await agentd.runtime.keys.create({ tenant })).key);
  });
  after(async () => {
    await agentd.close();
    await mock.close();
  });

  const submit = (key: string, body: Record<string, unknown> = {}) =>
    call(
      agentd.url,
      'POST',
      '/v1/tasks',
      { agent: 'assistant', input: 'x', ...body },
      { authorization: `Bearer ${key}` },
    );
  const startedAt = async (key: string, id: string) => {
    await readSse(`${agentd.url}/v1/tasks/${id}/events`, { headers: { authorization: `Bearer ${key}` } });
    const task = await call(agentd.url, 'GET', `/v1/tasks/${id}`, undefined, {
      authorization: `Bearer ${key}`,
    });
    return Date.parse(task.body.started_at);
  };

  it('fails a task that cannot start before its deadline', async () => {
    const [a] = keys;
    const busy = await submit(a!);
    const hurried = await submit(a!, { deadline_ms: 30 });
    const { events } = await readSse(`${agentd.url}/v1/tasks/${hurried.body.id}/events`, {
      headers: { authorization: `Bearer ${a}` },
    });
    assert.equal(events.at(-1)!.data.status, 'failed');
    assert.equal(events.at(-1)!.data.error.code, 'AGENTD_DEADLINE_EXCEEDED');
    await startedAt(a!, busy.body.id);
  });

  it("interleaves tenants: a burst from one does not delay another's tasks behind it", async () => {
    const [a, b] = keys;
    const burst = [];
    for (let i = 0; i < 6; i++) burst.push((await submit(a!)).body.id);
    const late = [(await submit(b!)).body.id, (await submit(b!)).body.id];
    const aStarts = await Promise.all(burst.map((id) => startedAt(a!, id)));
    const bStarts = await Promise.all(late.map((id) => startedAt(b!, id)));
    const lastB = Math.max(...bStarts);
    const aBeforeLastB = aStarts.filter((t) => t <= lastB).length;
    assert.ok(aBeforeLastB <= 4, `B's two tasks started after only ${aBeforeLastB} of A's six`);
  });

  it("runs a tenant's configured priority first", async () => {
    const [a, , vip] = keys;
    const first = await submit(a!);
    const normal = await submit(a!);
    const urgent = await submit(vip!);
    const [normalStart, urgentStart] = await Promise.all([
      startedAt(a!, normal.body.id),
      startedAt(vip!, urgent.body.id),
    ]);
    assert.ok(urgentStart <= normalStart, 'the vip task overtook the earlier normal one');
    await startedAt(a!, first.body.id);
  });

  it('gives tools a stable idempotency key for side effects', async () => {
    const [a] = keys;
    const res = await call(
      agentd.url,
      'POST',
      '/v1/agents/payer/run',
      { input: 'pay' },
      { authorization: `Bearer ${a}` },
    );
    assert.match(res.body.result, /[A-Za-z0-9_-]{32}/);
  });
});
