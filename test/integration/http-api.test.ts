import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { MockLlmServer } from '../../src/llm/index.js';
import { call, readSse, startAgentd, type TestAgentd } from '../helpers/agentd.js';

describe('HTTP API', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;

  before(async () => {
    mock = await MockLlmServer.start();
    agentd = await startAgentd({
      config: {
        providers: { mock: { type: 'mock', base_url: mock.url } },
        models: {
          'mock-small': { provider: 'mock' },
          'mock-medium': { provider: 'mock' },
          'mock-large': { provider: 'mock' },
          looping: { provider: 'mock', name: 'looping' },
        },
        tiers: { small: ['mock-small'], medium: ['mock-medium'], large: ['mock-large'] },
        server: { body_limit_bytes: 4096 },
        tasks: { max_input_chars: 1000 },
        agents: {
          assistant: { tools: ['calculator', 'current_time'], system_prompt: 'Use the calculator.' },
          loop: { model: 'looping', tools: ['calculator'], max_iterations: 3 },
          frugal: { model: 'looping', tools: ['calculator'], token_budget: 150 },
        },
      },
    });
  });
  after(async () => {
    await agentd.close();
    await mock.close();
  });

  describe('synchronous runs', () => {
    it('runs the assistant through a calculator round trip and reports overhead', async () => {
      const res = await call(agentd.url, 'POST', '/v1/agents/assistant/run', {
        input: 'What is 17*23? Use the calculator.',
      });
      assert.equal(res.status, 200);
      assert.equal(res.body.status, 'succeeded');
      assert.equal(res.body.result, 'The result is 391.');
      assert.equal(res.body.tool_calls, 1);
      assert.equal(res.body.iterations, 2);
      assert.equal(res.body.model, 'mock-medium');
      assert.ok(res.body.cost_usd === 0, 'no price configured for these models');
      assert.equal(res.body.usage.total_tokens, res.body.usage.input_tokens + res.body.usage.output_tokens);
      const overhead = Number(res.headers['x-agentd-overhead-ms']);
      assert.ok(Number.isFinite(overhead) && overhead >= 0);
    });

    it('cancels the task when a synchronous caller hangs up, and only then', async () => {
      const controller = new AbortController();
      const pending = request(`${agentd.url}/v1/agents/assistant/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: 'long', model: 'mock/mock?tokens=100&interval_ms=20&id=hangup' }),
        signal: controller.signal,
      }).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const list = await call(agentd.url, 'GET', '/v1/tasks?limit=1');
      const id = list.body.data[0].id;
      assert.equal(list.body.data[0].status, 'running', 'still running while the caller waits');
      controller.abort();
      await pending;
      let status = 'running';
      for (let i = 0; i < 50 && status === 'running'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        status = (await call(agentd.url, 'GET', `/v1/tasks/${id}`)).body.status;
      }
      assert.equal(status, 'cancelled');
    });

    it('maps mode to a tier and lets a request choose a tier or model', async () => {
      const simple = await call(agentd.url, 'POST', '/v1/agents/assistant/run', {
        input: 'hi',
        mode: 'simple',
      });
      assert.equal(simple.body.model, 'mock-small');
      const research = await call(agentd.url, 'POST', '/v1/agents/assistant/run', {
        input: 'hi',
        mode: 'research',
      });
      assert.equal(research.body.model, 'mock-large');
      const tier = await call(agentd.url, 'POST', '/v1/agents/assistant/run', {
        input: 'hi',
        tier: 'small',
        mode: 'complex',
      });
      assert.equal(tier.body.model, 'mock-small', 'an explicit tier wins over the mode');
    });

    it('streams a run as SSE: deltas, tool activity, and a final event', async () => {
      const { status, headers, events } = await readSse(`${agentd.url}/v1/agents/assistant/run`, {
        method: 'POST',
        body: { input: 'What is 6*7?', stream: true },
      });
      assert.equal(status, 200);
      assert.match(String(headers['content-type']), /text\/event-stream/);
      const types = events.map((e) => e.event);
      assert.equal(types[0], 'task.queued');
      assert.ok(types.includes('tool.started') && types.includes('tool.completed'));
      const tool = events.find((e) => e.event === 'tool.completed')!;
      assert.deepEqual(tool.data.result, { expression: '6*7', result: 42 });
      const text = events
        .filter((e) => e.event === 'llm.delta')
        .map((e) => e.data.text)
        .join('');
      assert.equal(text, 'The result is 42.');
      assert.equal(types.at(-1), 'task.completed');
      assert.deepEqual(
        events.map((e) => Number(e.id)),
        events.map((_, i) => i + 1),
        'ids are sequential from 1',
      );
    });

    it('refuses a tool the model calls outside the allow-list, and records it', async () => {
      const model = `mock/mock?call=http_fetch&args=${encodeURIComponent('{"url":"https://example.com"}')}`;
      const { events } = await readSse(`${agentd.url}/v1/agents/assistant/run`, {
        method: 'POST',
        body: { input: 'fetch it', model, stream: true },
      });
      const refused = events.find((e) => e.event === 'tool.completed')!;
      assert.equal(refused.data.ok, false);
      assert.equal(refused.data.error.code, 'AGENTD_TOOL_FORBIDDEN');
      const final = events.at(-1)!;
      assert.equal(final.data.status, 'succeeded');
      assert.match(final.data.result, /AGENTD_TOOL_FORBIDDEN/, 'the model was told why');
    });

    it('stops a looping agent at max_iterations with the partial output kept and labelled', async () => {
      for (let i = 0; i < 3; i++) {
        mock.enqueue('looping', {
          content: `step ${i}`,
          toolCalls: [{ name: 'calculator', arguments: { expression: `${i}+1` } }],
        });
      }
      const res = await call(agentd.url, 'POST', '/v1/agents/loop/run', { input: 'go' });
      assert.equal(res.status, 422);
      assert.equal(res.body.error.code, 'AGENTD_MAX_ITERATIONS');
      assert.equal(res.body.task.status, 'failed');
      assert.equal(res.body.task.partial, true);
      assert.equal(res.body.task.result, 'step 2');
      assert.equal(res.body.task.tool_calls, 3);
    });

    it('stops an agent that exhausts its token budget with budget_exhausted', async () => {
      for (let i = 0; i < 10; i++) {
        mock.enqueue('looping', {
          content: 'thinking',
          toolCalls: [{ name: 'calculator', arguments: { expression: '1+1' } }],
        });
      }
      const res = await call(agentd.url, 'POST', '/v1/agents/frugal/run', { input: 'go' });
      mock.reset();
      assert.equal(res.body.error.code, 'AGENTD_BUDGET_EXHAUSTED');
      assert.equal(res.body.error.details.limit, 'task.max_tokens');
      assert.equal(res.body.task.partial, true);
      assert.equal(res.body.task.result, 'thinking');
    });
  });

  describe('asynchronous tasks', () => {
    it('accepts a task with 202 and a Location, and serves it by id', async () => {
      const res = await call(agentd.url, 'POST', '/v1/tasks', {
        agent: 'assistant',
        input: 'hello',
        model: 'mock/mock?ttft_ms=300',
        metadata: { ticket: 42 },
      });
      assert.equal(res.status, 202);
      assert.equal(res.headers.location, `/v1/tasks/${res.body.id}`);
      assert.ok(['queued', 'running'].includes(res.body.status));
      const done = await call(agentd.url, 'POST', '/v1/tasks', {
        agent: 'assistant',
        input: 'hello',
        wait: true,
      });
      assert.equal(done.status, 200);
      assert.equal(done.body.status, 'succeeded');
      const fetched = await call(agentd.url, 'GET', `/v1/tasks/${res.body.id}`);
      assert.equal(fetched.status, 200);
      assert.deepEqual(fetched.body.metadata, { ticket: 42 });
    });

    it('waits for the result with Prefer: wait=N', async () => {
      const res = await call(
        agentd.url,
        'POST',
        '/v1/tasks',
        { agent: 'assistant', input: 'hi' },
        { prefer: 'wait=5' },
      );
      assert.equal(res.status, 200);
      assert.equal(res.body.status, 'succeeded');
    });

    it('returns the same task for a repeated Idempotency-Key', async () => {
      const headers = { 'idempotency-key': `key-${Date.now()}` };
      const first = await call(
        agentd.url,
        'POST',
        '/v1/tasks',
        { agent: 'assistant', input: 'once' },
        headers,
      );
      const second = await call(
        agentd.url,
        'POST',
        '/v1/tasks',
        { agent: 'assistant', input: 'once' },
        headers,
      );
      assert.equal(first.status, 202);
      assert.equal(second.body.id, first.body.id);
      assert.equal(second.headers['idempotent-replayed'], 'true');
      const concurrent = await Promise.all(
        Array.from({ length: 5 }, () =>
          call(
            agentd.url,
            'POST',
            '/v1/tasks',
            { agent: 'assistant', input: 'race' },
            { 'idempotency-key': 'race-key' },
          ),
        ),
      );
      assert.equal(new Set(concurrent.map((r) => r.body.id)).size, 1, 'concurrent repeats share one task');
    });

    it('cancels a running task and stops its provider stream', async () => {
      const model = 'mock/mock?tokens=500&interval_ms=20&id=cancel';
      const created = await call(agentd.url, 'POST', '/v1/tasks', {
        agent: 'assistant',
        input: 'long',
        model,
      });
      await readSse(`${agentd.url}/v1/tasks/${created.body.id}/events`, {
        until: (e) => e.event === 'llm.delta',
      });
      const cancelled = await call(agentd.url, 'POST', `/v1/tasks/${created.body.id}/cancel`);
      assert.equal(cancelled.status, 200);
      const final = await call(agentd.url, 'POST', '/v1/tasks', { agent: 'assistant', input: 'x', wait: 1 });
      assert.ok(final.status === 200 || final.status === 202);
      const after = await call(agentd.url, 'GET', `/v1/tasks/${created.body.id}`);
      assert.equal(after.body.status, 'cancelled');
      assert.equal(after.body.error.code, 'AGENTD_CANCELLED');
      const again = await call(agentd.url, 'POST', `/v1/tasks/${created.body.id}/cancel`);
      assert.equal(again.body.status, 'cancelled', 'cancelling a finished task changes nothing');
    });

    it('lists tasks by session with cursor pagination', async () => {
      const session = `list-${Date.now()}`;
      for (let i = 0; i < 5; i++) {
        await call(agentd.url, 'POST', '/v1/agents/assistant/run', {
          input: `turn ${i}`,
          session_id: session,
        });
      }
      const ids: string[] = [];
      let cursor: string | null = null;
      do {
        const query: string = `/v1/tasks?session=${session}&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
        const page = await call(agentd.url, 'GET', query);
        assert.equal(page.status, 200);
        ids.push(...page.body.data.map((t: { input: string }) => t.input));
        cursor = page.body.next_cursor;
      } while (cursor !== null);
      assert.deepEqual(ids, ['turn 4', 'turn 3', 'turn 2', 'turn 1', 'turn 0']);
      const failed = await call(agentd.url, 'GET', `/v1/tasks?session_id=${session}&status=failed`);
      assert.deepEqual(failed.body.data, []);
    });
  });

  describe('task events (SSE)', () => {
    it('streams every event with an id, and resumes after Last-Event-ID', async () => {
      const created = await call(agentd.url, 'POST', '/v1/tasks', {
        agent: 'assistant',
        input: 'stream please',
        model: 'mock/mock?tokens=6&interval_ms=10',
      });
      const full = await readSse(`${agentd.url}/v1/tasks/${created.body.id}/events`);
      assert.equal(full.status, 200);
      assert.equal(full.events.at(-1)!.event, 'task.completed');
      assert.ok(full.events.every((e) => e.id !== undefined));
      const lastDelta = full.events.filter((e) => e.event === 'llm.delta').at(-2)!;
      const resumed = await readSse(`${agentd.url}/v1/tasks/${created.body.id}/events`, {
        headers: { 'last-event-id': lastDelta.id! },
      });
      assert.deepEqual(
        resumed.events.map((e) => e.id),
        full.events.filter((e) => Number(e.id) > Number(lastDelta.id)).map((e) => e.id),
      );
      const viaQuery = await readSse(
        `${agentd.url}/v1/tasks/${created.body.id}/events?after=${lastDelta.id}`,
      );
      assert.equal(viaQuery.events.length, resumed.events.length);
    });

    it('sends heartbeats while a task is quiet', async () => {
      const quiet = await startAgentd({
        config: {
          providers: { mock: { type: 'mock', base_url: mock.url } },
          models: { m: { provider: 'mock', name: 'mock' } },
          tiers: { medium: ['m'] },
          server: { sse_heartbeat_ms: 100 },
        },
      });
      try {
        const created = await call(quiet.url, 'POST', '/v1/tasks', {
          agent: 'assistant',
          input: 'slow',
          model: 'mock/mock?ttft_ms=450',
        });
        const { comments, events } = await readSse(`${quiet.url}/v1/tasks/${created.body.id}/events`);
        assert.ok(comments >= 2, `expected heartbeats, got ${comments}`);
        assert.equal(events.at(-1)!.event, 'task.completed');
      } finally {
        await quiet.close();
      }
    });

    it('answers 404 for an unknown task', async () => {
      const res = await call(agentd.url, 'GET', '/v1/tasks/does-not-exist/events');
      assert.equal(res.status, 404);
      assert.equal(res.body.error.code, 'AGENTD_NOT_FOUND');
    });
  });

  describe('sessions', () => {
    it('keeps the conversation and feeds it to the next turn', async () => {
      const session = `s-${Date.now()}`;
      const first = await call(agentd.url, 'POST', '/v1/agents/assistant/run', {
        input: 'What is 2+2?',
        session_id: session,
      });
      const second = await call(agentd.url, 'POST', '/v1/agents/assistant/run', {
        input: 'And now?',
        session_id: session,
      });
      assert.ok(second.body.usage.input_tokens > first.body.usage.input_tokens / 2, 'history adds context');
      const messages = await call(agentd.url, 'GET', `/v1/sessions/${session}/messages`);
      assert.equal(messages.status, 200);
      assert.deepEqual(
        messages.body.data.map((m: { role: string }) => m.role),
        ['user', 'assistant', 'tool', 'assistant', 'user', 'assistant'],
      );
      assert.equal(messages.body.data[1].tool_calls[0].function.name, 'calculator');
      assert.equal(messages.body.data[2].tool_call_id, messages.body.data[1].tool_calls[0].id);
      const page = await call(agentd.url, 'GET', `/v1/sessions/${session}/messages?after=4&limit=1`);
      assert.deepEqual(
        page.body.data.map((m: { seq: number }) => m.seq),
        [5],
      );
      assert.equal(page.body.next_cursor, '5');
      const missing = await call(agentd.url, 'GET', '/v1/sessions/nope/messages');
      assert.equal(missing.status, 404);
    });
  });

  describe('bad input gets a clear 4xx naming the problem', () => {
    const run = (body: unknown, headers?: Record<string, string>) =>
      call(agentd.url, 'POST', '/v1/agents/assistant/run', body, headers);

    it('names a missing or unknown field', async () => {
      const missing = await run({});
      assert.equal(missing.status, 400);
      assert.equal(missing.body.error.code, 'AGENTD_INVALID_REQUEST');
      assert.equal(missing.body.error.details.field, 'body.input');
      const unknown = await run({ input: 'x', imput: 'typo' });
      assert.equal(unknown.status, 400);
      assert.match(unknown.body.error.message, /body\.imput is not a known field/);
      const wrongType = await run({ input: 42 });
      assert.equal(wrongType.status, 400);
      assert.match(wrongType.body.error.message, /body\.input must be string/);
    });

    it('rejects malformed JSON, a wrong media type, and an oversized body', async () => {
      const malformed = await run('{"input": "x"');
      assert.equal(malformed.status, 400);
      assert.match(malformed.body.error.message, /not valid JSON/);
      const media = await run('input=x', { 'content-type': 'text/plain' });
      assert.equal(media.status, 415);
      const big = await run({ input: 'x'.repeat(10_000) });
      assert.equal(big.status, 413);
      assert.equal(big.body.error.code, 'AGENTD_PAYLOAD_TOO_LARGE');
      const longInput = await run({ input: 'x'.repeat(2000) });
      assert.equal(longInput.status, 413);
      assert.equal(longInput.body.error.details.field, 'input');
    });

    it('rejects prototype-poisoning bodies and deeply nested JSON without falling over', async () => {
      const poisoned = await run('{"input":"x","__proto__":{"admin":true}}');
      assert.equal(poisoned.status, 400);
      const deep = await run(`{"input":"x","metadata":${'{"a":'.repeat(800)}1${'}'.repeat(800)}}`);
      assert.ok(deep.status === 400 || deep.status === 413);
      assert.equal((await call(agentd.url, 'GET', '/healthz')).status, 200);
    });

    it('answers 404 for an unknown agent, task or route, and 400 for an unknown model or tier', async () => {
      const agent = await call(agentd.url, 'POST', '/v1/agents/nobody/run', { input: 'x' });
      assert.equal(agent.status, 404);
      assert.match(agent.body.error.message, /no agent named "nobody"/);
      assert.equal((await call(agentd.url, 'GET', '/v1/tasks/nope')).status, 404);
      assert.equal((await call(agentd.url, 'GET', '/v1/nothing')).status, 404);
      const model = await run({ input: 'x', model: 'gpt-imaginary' });
      assert.equal(model.status, 400);
      assert.match(model.body.error.message, /unknown model "gpt-imaginary"/);
      const tier = await run({ input: 'x', tier: 'huge' });
      assert.equal(tier.status, 400);
      assert.equal(tier.body.error.details.field, 'body.tier');
    });

    it('refuses a request that asks for a tool the agent may not use', async () => {
      const res = await run({ input: 'x', tools: ['http_fetch'] });
      assert.equal(res.status, 403);
      assert.equal(res.body.error.code, 'AGENTD_TOOL_FORBIDDEN');
    });

    it('rejects an over-long Idempotency-Key', async () => {
      const res = await call(
        agentd.url,
        'POST',
        '/v1/tasks',
        { agent: 'assistant', input: 'x' },
        { 'idempotency-key': 'k'.repeat(300) },
      );
      assert.equal(res.status, 400);
    });
  });

  describe('service endpoints', () => {
    it('reports liveness and readiness', async () => {
      const live = await call(agentd.url, 'GET', '/healthz');
      assert.equal(live.status, 200);
      for (const key of ['status', 'version', 'uptime_seconds', 'active_tasks', 'total_tasks'])
        assert.ok(key in live.body, key);
      const ready = await call(agentd.url, 'GET', '/readyz');
      assert.equal(ready.status, 200);
      assert.equal(ready.body.checks.storage, 'ok');
    });

    it('lists agents', async () => {
      const res = await call(agentd.url, 'GET', '/v1/agents');
      const assistant = res.body.data.find((a: { name: string }) => a.name === 'assistant');
      assert.deepEqual(assistant.tools, ['calculator', 'current_time']);
    });

    it('serves an OpenAPI document describing every route', async () => {
      const res = await request(`${agentd.url}/openapi.json`);
      const doc = (await res.body.json()) as { openapi: string; paths: Record<string, unknown> };
      assert.equal(doc.openapi, '3.1.0');
      for (const path of [
        '/v1/tasks',
        '/v1/tasks/{id}',
        '/v1/tasks/{id}/cancel',
        '/v1/tasks/{id}/events',
        '/v1/agents',
        '/v1/agents/{name}/run',
        '/v1/sessions/{id}/messages',
        '/healthz',
        '/readyz',
      ]) {
        assert.ok(path in doc.paths, path);
      }
    });
  });
});
