import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Type from 'typebox';
import { MockLlmServer } from '../../src/llm/index.js';
import { defineTool } from '../../src/tools/index.js';
import { call, readSse, startAgentd, type TestAgentd } from '../helpers/agentd.js';

const slow = 'mock?tokens=20&interval_ms=20';

describe('admission over HTTP', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;
  let failures = 0;

  before(async () => {
    mock = await MockLlmServer.start();
    const flaky = defineTool({
      name: 'flaky',
      description: 'always fails',
      parameters: Type.Object({}),
      handler: () => {
        failures++;
        throw new Error('backend down');
      },
    });
    agentd = await startAgentd({
      tools: [flaky],
      config: {
        providers: { mock: { type: 'mock', base_url: mock.url } },
        models: {
          m: { provider: 'mock', name: 'mock' },
          priced: {
            provider: 'mock',
            name: 'looping',
            input_usd_per_mtok: 10_000,
            output_usd_per_mtok: 10_000,
          },
          slow: { provider: 'mock', name: slow },
          primary: { provider: 'mock', name: 'primary', fallbacks: ['backup'] },
          backup: { provider: 'mock', name: 'backup' },
        },
        tiers: { small: ['m'], medium: ['m'], large: ['m'] },
        agents: {
          assistant: { tools: ['calculator', 'flaky'] },
          spender: { model: 'priced', tools: ['calculator'], max_usd: 0.2 },
          sleeper: { model: 'slow' },
          routed: { model: 'primary' },
        },
        tools: { breaker: { min_requests: 2, failure_rate: 0.5, open_ms: 60_000 } },
        limits: {
          tenants: {
            // Slow refills: a loaded machine taking seconds per request must not refill the bucket.
            limited: { requests_per_second: 0.05, burst: 2 },
            narrow: { concurrency: 1, max_queue: 1 },
            thrifty: { usd_per_day: 0.05 },
          },
          models: { primary: { requests_per_second: 0.01, burst: 1 } },
          tools: { calculator: { requests_per_second: 1, burst: 1 } },
          queue_timeout_ms: 10_000,
        },
      },
    });
  });
  after(async () => {
    await agentd.close();
    await mock.close();
  });

  /** A key for tests that are not about identity: once any key exists, every request needs one. */
  let general: Record<string, string>;
  before(async () => {
    general = bearer(await keyFor('main'));
  });

  async function keyFor(
    tenant: string,
    options: { agents?: string[]; limits?: Record<string, number> } = {},
  ) {
    return (await agentd.runtime.keys.create({ tenant, ...options })).key;
  }
  const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

  it('refuses a tenant over its request rate with 429, a Retry-After and the limit named; nothing is created', async () => {
    const key = await keyFor('limited');
    const results = [];
    for (let i = 0; i < 3; i++) {
      results.push(
        await call(agentd.url, 'POST', '/v1/tasks', { agent: 'assistant', input: `n${i}` }, bearer(key)),
      );
    }
    assert.deepEqual(
      results.map((r) => r.status),
      [202, 202, 429],
    );
    const refused = results[2]!;
    assert.equal(refused.body.error.code, 'AGENTD_RATE_LIMITED');
    assert.equal(refused.body.error.details.limit, 'tenant.requests_per_second');
    const retryMs = refused.body.error.retry_after_ms;
    assert.ok(retryMs > 0 && retryMs <= 20_000, `retry after ${retryMs} ms: within one refill (20 s)`);
    assert.equal(refused.headers['retry-after'], String(Math.ceil(retryMs / 1000)));
    const listed = await call(agentd.url, 'GET', '/v1/tasks', undefined, bearer(key));
    assert.equal(listed.body.data.length, 2, 'the refused request left no task');
  });

  it('queues a task past the concurrency limit, refuses once the queue is full, then runs the queued one', async () => {
    const key = await keyFor('narrow');
    const first = await call(agentd.url, 'POST', '/v1/tasks', { agent: 'sleeper', input: 'a' }, bearer(key));
    const second = await call(agentd.url, 'POST', '/v1/tasks', { agent: 'sleeper', input: 'b' }, bearer(key));
    const third = await call(agentd.url, 'POST', '/v1/tasks', { agent: 'sleeper', input: 'c' }, bearer(key));
    assert.equal(first.status, 202);
    assert.equal(second.status, 202, 'accepted into the queue');
    assert.equal(second.body.status, 'queued');
    assert.equal(third.status, 429);
    assert.equal(third.body.error.code, 'AGENTD_CONCURRENCY_LIMITED');
    assert.equal(third.body.error.details.limit, 'tenant.concurrency');
    const { events } = await readSse(`${agentd.url}/v1/tasks/${second.body.id}/events`, {
      headers: bearer(key),
    });
    assert.equal(events.at(-1)!.data.status, 'succeeded');
    const done = await call(agentd.url, 'GET', `/v1/tasks/${first.body.id}`, undefined, bearer(key));
    assert.equal(done.body.status, 'succeeded');
  });

  it('stops a looping agent at its cost budget with the partial answer kept', async () => {
    for (let i = 0; i < 20; i++) {
      mock.enqueue('looping', {
        content: `step ${i}`,
        toolCalls: [{ name: 'calculator', arguments: { expression: '1+1' } }],
      });
    }
    const res = await call(agentd.url, 'POST', '/v1/agents/spender/run', { input: 'keep going' }, general);
    mock.reset();
    assert.equal(res.status, 429);
    assert.equal(res.body.error.code, 'AGENTD_BUDGET_EXHAUSTED');
    assert.equal(res.body.error.details.limit, 'task.max_usd');
    assert.equal(res.body.task.partial, true);
    assert.match(res.body.task.result, /^step \d+$/);
    assert.ok(res.body.task.cost_usd >= 0.2);
  });

  it("refuses a tenant whose daily budget is spent, until the day's end", async () => {
    const key = await keyFor('thrifty');
    const run = () =>
      call(agentd.url, 'POST', '/v1/agents/spender/run', { input: 'hi', model: 'priced' }, bearer(key));
    mock.enqueue('looping', { content: 'expensive answer' });
    const first = await run();
    assert.equal(first.body.status, 'succeeded');
    const second = await run();
    assert.equal(second.status, 429);
    assert.equal(second.body.error.code, 'AGENTD_BUDGET_EXHAUSTED');
    assert.equal(second.body.error.details.limit, 'tenant.usd_per_day');
    const untilMidnight =
      Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1) -
      Date.now();
    assert.ok(Math.abs(second.body.error.retry_after_ms - untilMidnight) < 60_000);
  });

  it('fails over to the next model when a model is at its own limit', async () => {
    const first = await call(agentd.url, 'POST', '/v1/agents/routed/run', { input: 'one' }, general);
    const second = await call(agentd.url, 'POST', '/v1/agents/routed/run', { input: 'two' }, general);
    assert.equal(first.body.model, 'primary');
    assert.equal(second.body.model, 'backup');
  });

  it('refuses a tool call past its rate limit, as a result the model can read', async () => {
    mock.enqueue('mock', {
      toolCalls: [
        { name: 'calculator', arguments: { expression: '1+1' } },
        { name: 'calculator', arguments: { expression: '2+2' } },
      ],
    });
    const { events } = await readSse(`${agentd.url}/v1/agents/assistant/run`, {
      method: 'POST',
      body: { input: 'two sums', model: 'mock/mock', stream: true },
      headers: general,
    });
    mock.reset();
    const outcomes = events
      .filter((e) => e.event === 'tool.completed')
      .map((e) => (e.data.ok ? 'ok' : e.data.error.code));
    assert.deepEqual(outcomes.sort(), ['AGENTD_RATE_LIMITED', 'ok']);
  });

  it('opens a failing tool circuit: the tool is no longer called and readiness shows it', async () => {
    const before = failures;
    for (let i = 0; i < 3; i++) {
      mock.enqueue('mock', { toolCalls: [{ name: 'flaky', arguments: {} }] });
      await call(
        agentd.url,
        'POST',
        '/v1/agents/assistant/run',
        { input: 'try', model: 'mock/mock' },
        general,
      );
    }
    mock.reset();
    assert.equal(failures - before, 2, 'two failures open the circuit; the third call is refused');
    const ready = await call(agentd.url, 'GET', '/readyz');
    const breaker = ready.body.checks.breakers.find((b: { target: string }) => b.target === 'tool:flaky');
    assert.equal(breaker.state, 'open');
    assert.equal(ready.status, 200, 'an open tool circuit does not make the server unready');
  });

  describe('identity and tenant isolation', () => {
    let alice: string;
    let bob: string;
    let taskOfAlice: string;

    before(async () => {
      alice = await keyFor('tenant-a');
      bob = await keyFor('tenant-b');
      const created = await call(
        agentd.url,
        'POST',
        '/v1/tasks',
        { agent: 'assistant', input: 'private to A', session_id: 'a-session', wait: true },
        bearer(alice),
      );
      taskOfAlice = created.body.id;
    });

    it('asks for a key once any key exists (401), but leaves health endpoints open', async () => {
      const anonymous = await call(agentd.url, 'GET', '/v1/agents');
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.body.error.code, 'AGENTD_UNAUTHORIZED');
      assert.equal(anonymous.headers['www-authenticate'], 'Bearer');
      const wrong = await call(agentd.url, 'GET', '/v1/agents', undefined, bearer('agd_not-a-key'));
      assert.equal(wrong.status, 401);
      assert.equal((await call(agentd.url, 'GET', '/healthz')).status, 200);
      assert.equal(
        (await call(agentd.url, 'GET', '/v1/agents', undefined, { 'x-api-key': alice })).status,
        200,
      );
    });

    it("never lets tenant B read, list, cancel or stream tenant A's tasks or sessions", async () => {
      const b = bearer(bob);
      assert.equal((await call(agentd.url, 'GET', `/v1/tasks/${taskOfAlice}`, undefined, b)).status, 404);
      assert.equal(
        (await call(agentd.url, 'POST', `/v1/tasks/${taskOfAlice}/cancel`, undefined, b)).status,
        404,
      );
      assert.equal(
        (await call(agentd.url, 'GET', `/v1/tasks/${taskOfAlice}/events`, undefined, b)).status,
        404,
      );
      assert.equal(
        (await call(agentd.url, 'GET', '/v1/sessions/a-session/messages', undefined, b)).status,
        404,
      );
      const list = await call(agentd.url, 'GET', '/v1/tasks', undefined, b);
      assert.ok(!list.body.data.some((t: { id: string }) => t.id === taskOfAlice));
      const hijack = await call(
        agentd.url,
        'POST',
        '/v1/agents/assistant/run',
        { input: 'x', session_id: 'a-session' },
        b,
      );
      assert.equal(hijack.status, 404, "B cannot append to A's session");
      const own = await call(agentd.url, 'GET', `/v1/tasks/${taskOfAlice}`, undefined, bearer(alice));
      assert.equal(own.status, 200);
      assert.equal(
        (await call(agentd.url, 'GET', '/v1/sessions/a-session/messages', undefined, bearer(alice))).status,
        200,
      );
    });

    it("enforces a key's agent allow-list, and stops accepting a revoked key", async () => {
      const created = await agentd.runtime.keys.create({ tenant: 'tenant-a', agents: ['sleeper'] });
      const res = await call(
        agentd.url,
        'POST',
        '/v1/agents/assistant/run',
        { input: 'x' },
        bearer(created.key),
      );
      assert.equal(res.status, 403);
      assert.equal(res.body.error.details.limit, 'key.agents');
      await agentd.runtime.keys.revoke(created.record.id);
      assert.equal((await call(agentd.url, 'GET', '/v1/agents', undefined, bearer(created.key))).status, 401);
    });
  });
});
