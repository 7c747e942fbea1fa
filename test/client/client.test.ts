import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { AgentdApiError, AgentdClient, type TaskEvent } from '../../src/client/index.js';
import { MockLlmServer } from '../../src/llm/index.js';
import { oneMockModel, startAgentd, type TestAgentd } from '../helpers/agentd.js';

describe('agentd/client', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;
  let client: AgentdClient;

  before(async () => {
    mock = await MockLlmServer.start();
    agentd = await startAgentd({
      config: {
        ...oneMockModel(mock.url, 'mock-small'),
        agents: {
          assistant: { tools: ['calculator'] },
          limited: { tools: [] },
        },
        limits: { agents: { limited: { requests_per_second: 2, burst: 1 } } },
      },
    });
    client = new AgentdClient({ baseUrl: agentd.url });
  });
  after(async () => {
    await agentd.close();
    await mock.close();
  });

  it('runs an agent, reads the task back and lists agents, typed', async () => {
    const task = await client.runAgent('assistant', { input: 'What is 6*7?' });
    assert.equal(task.status, 'succeeded');
    assert.equal(task.result, 'The result is 42.');
    const again = await client.getTask(task.id);
    assert.equal(again.id, task.id);
    const agents = await client.listAgents();
    assert.deepEqual(
      agents.map((agent) => agent.name),
      ['assistant', 'limited'],
    );
    const health = await client.health();
    assert.equal(health.status, 'ok');
  });

  it('streams a task as an async iterator that ends with task.completed', async () => {
    const events: TaskEvent[] = [];
    const stream = client.stream({ agent: 'assistant', input: 'What is 2+2?' });
    let next = await stream.next();
    while (next.done !== true) {
      events.push(next.value);
      next = await stream.next();
    }
    assert.equal(events.at(-1)?.type, 'task.completed');
    assert.ok(events.some((event) => event.type === 'tool.started'));
    assert.equal(next.value.result, 'The result is 4.');
  });

  it('resumes a broken event stream with Last-Event-ID, losing and repeating nothing', async () => {
    let cuts = 0;
    const resumedFrom: (string | null)[] = [];
    const cutting: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      const url = String(input);
      if (!url.endsWith('/events')) return response;
      resumedFrom.push(new Headers(init?.headers).get('last-event-id'));
      if (cuts >= 2) return response;
      cuts++;
      // Deliver events up to and including some text, then break the connection.
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { value, done } = await reader.read();
          if (done) {
            controller.close();
            return;
          }
          controller.enqueue(value);
          if (decoder.decode(value).includes('event: llm.delta')) {
            controller.error(new TypeError('terminated'));
            await reader.cancel();
          }
        },
      });
      return new Response(body, { status: response.status, headers: response.headers });
    };
    const resuming = new AgentdClient({ baseUrl: agentd.url, fetch: cutting });
    const task = await resuming.createTask({
      agent: 'assistant',
      input: 'tell me something',
      model: 'mock/mock?tokens=30&interval_ms=5',
    });
    const ids: number[] = [];
    const text: string[] = [];
    for await (const event of resuming.events(task.id)) {
      ids.push(Number(event.id));
      if (event.type === 'llm.delta') text.push(event.data.text as string);
    }
    assert.equal(cuts, 2);
    assert.equal(resumedFrom[0], null);
    assert.ok(
      resumedFrom[1] !== null && resumedFrom[2] !== null,
      `reconnections carry Last-Event-ID: ${JSON.stringify(resumedFrom)}`,
    );
    for (let i = 1; i < ids.length; i++) assert.equal(ids[i], ids[i - 1]! + 1, 'ids are consecutive');
    assert.equal(text.join('').split(' ').length, 30, 'every token arrived once');
  });

  it('retries a 429 after the Retry-After the server sent', async () => {
    const retrying = new AgentdClient({ baseUrl: agentd.url, maxRetries: 3 });
    const first = retrying.createTask({ agent: 'limited', input: 'one' });
    const second = retrying.createTask({ agent: 'limited', input: 'two' });
    const [a, b] = await Promise.all([first, second]);
    assert.notEqual(a.id, b.id, 'both were admitted, one after waiting');

    const impatient = new AgentdClient({ baseUrl: agentd.url, maxRetries: 0 });
    await impatient.createTask({ agent: 'limited', input: 'three' }).catch(() => undefined);
    await assert.rejects(impatient.createTask({ agent: 'limited', input: 'four' }), (err: unknown) => {
      assert.ok(err instanceof AgentdApiError);
      assert.equal(err.status, 429);
      assert.equal(err.code, 'AGENTD_RATE_LIMITED');
      assert.ok(err.retryAfterMs !== undefined && err.retryAfterMs > 0);
      return true;
    });
  });

  it('aborts a request and an event stream with an AbortSignal', async () => {
    const task = await client.createTask({
      agent: 'assistant',
      input: 'long',
      model: 'mock/mock?tokens=500&interval_ms=10',
    });
    const controller = new AbortController();
    let seen = 0;
    await assert.rejects(async () => {
      for await (const _event of client.events(task.id, { signal: controller.signal })) {
        if (++seen === 5) controller.abort();
      }
    });
    assert.ok(seen >= 5);
    const cancelled = await client.cancelTask(task.id);
    assert.ok(cancelled.status === 'cancelled' || cancelled.status === 'running');
    await assert.rejects(
      client.getTask('nope'),
      (err: unknown) => err instanceof AgentdApiError && err.status === 404,
    );
  });

  it('agentd run --url runs on a server through the client', async () => {
    const cli = new URL('../../dist/cli/main.js', import.meta.url).pathname;
    const child = spawn(process.execPath, [cli, 'run', 'assistant', 'What is 17*23?', '--url', agentd.url], {
      env: { PATH: process.env.PATH },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.equal(code, 0, stderr);
    assert.equal(stdout.trim(), 'The result is 391.');
    assert.match(stderr, /calculator\(\{"expression":"17\*23"\}\)/);
    assert.match(stderr, /succeeded · model mock-small/);
  });
});
