import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { hashKey } from '../../src/admission/index.js';
import { MockLlmServer } from '../../src/llm/index.js';
import { oneMockModel, startAgentd, type TestAgentd } from '../helpers/agentd.js';

type Message = Record<string, any>;

/** A test client: sends JSON, collects every message, and waits for the ones a test expects. */
class Client {
  readonly ws: WebSocket;
  readonly messages: Message[] = [];
  #waiters: { match: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  closed: Promise<{ code: number; reason: string }>;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.ws = new WebSocket(url, { headers });
    this.ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as Message;
      this.messages.push(message);
      this.#waiters = this.#waiters.filter((waiter) => {
        if (!waiter.match(message)) return true;
        waiter.resolve(message);
        return false;
      });
    });
    this.closed = new Promise((resolve) =>
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  send(message: Message): void {
    this.ws.send(JSON.stringify(message));
  }

  next(match: (m: Message) => boolean): Promise<Message> {
    const seen = this.messages.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }

  events(taskId: string): Message[] {
    return this.messages.filter((m) => m.type === 'event' && m.task_id === taskId);
  }
}

describe('WebSocket API', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;
  let url: string;

  before(async () => {
    mock = await MockLlmServer.start();
    agentd = await startAgentd({
      config: {
        ...oneMockModel(mock.url, 'mock-small'),
        agents: { assistant: { tools: ['calculator'] } },
        server: { websocket: { max_buffered_bytes: 65_536 } },
      },
    });
    url = `${agentd.url.replace('http', 'ws')}/v1/ws`;
  });
  after(async () => {
    await agentd.close();
    await mock.close();
  });

  it('multiplexes submissions on one connection, each followed to task.completed', async () => {
    const client = new Client(url);
    await client.opened();
    client.send({ type: 'submit', id: 'a', agent: 'assistant', input: 'What is 6*7?' });
    client.send({ type: 'submit', id: 'b', agent: 'assistant', input: 'What is 2+2?' });
    const [a, b] = await Promise.all([
      client.next((m) => m.type === 'submitted' && m.id === 'a'),
      client.next((m) => m.type === 'submitted' && m.id === 'b'),
    ]);
    assert.notEqual(a.task.id, b.task.id);
    const [doneA, doneB] = await Promise.all([
      client.next((m) => m.event === 'task.completed' && m.task_id === a.task.id),
      client.next((m) => m.event === 'task.completed' && m.task_id === b.task.id),
    ]);
    assert.equal(doneA.data.result, 'The result is 42.');
    assert.equal(doneB.data.result, 'The result is 4.');
    const ids = client.events(a.task.id).map((m) => Number(m.event_id));
    for (let i = 1; i < ids.length; i++) assert.equal(ids[i], ids[i - 1]! + 1, 'consecutive event ids');
    assert.ok(client.events(a.task.id).some((m) => m.event === 'tool.started'));
    client.ws.close();
  });

  it('resumes a task from an event id on a new connection', async () => {
    const first = new Client(url);
    await first.opened();
    first.send({ type: 'submit', id: 1, agent: 'assistant', input: 'What is 3*3?' });
    const submitted = await first.next((m) => m.type === 'submitted');
    await first.next((m) => m.event === 'task.completed');
    const all = first.events(submitted.task.id);
    first.ws.close();

    const second = new Client(url);
    await second.opened();
    const cut = all[2]!.event_id as string;
    second.send({ type: 'subscribe', id: 2, task_id: submitted.task.id, after: cut });
    await second.next((m) => m.type === 'subscribed' && m.id === 2);
    await second.next((m) => m.event === 'task.completed');
    assert.deepEqual(
      second.events(submitted.task.id).map((m) => m.event_id),
      all.slice(3).map((m) => m.event_id),
    );
    second.ws.close();
  });

  it('cancels a running task', async () => {
    const client = new Client(url);
    await client.opened();
    client.send({
      type: 'submit',
      id: 's',
      agent: 'assistant',
      input: 'long',
      model: 'mock/mock?tokens=500&interval_ms=10',
    });
    const submitted = await client.next((m) => m.type === 'submitted');
    await client.next((m) => m.event === 'llm.delta');
    client.send({ type: 'cancel', id: 'c', task_id: submitted.task.id });
    await client.next((m) => m.type === 'cancelled' && m.id === 'c');
    const done = await client.next((m) => m.event === 'task.completed');
    assert.equal(done.data.status, 'cancelled');
    client.ws.close();
  });

  it('answers bad messages with errors that echo the id, and keeps the connection', async () => {
    const client = new Client(url);
    await client.opened();
    client.ws.send('not json');
    client.send({ type: 'launch', id: 'x' });
    client.send({ type: 'submit', id: 'y', agent: 'assistant' });
    client.send({ type: 'subscribe', id: 'z', task_id: 'no-such-task' });
    client.send({ type: 'submit', id: 'w', agent: 'nobody', input: 'hi' });
    client.send({ type: 'ping', id: 'p' });
    const x = await client.next((m) => m.type === 'error' && m.id === 'x');
    assert.equal(x.error.details.field, 'type');
    const y = await client.next((m) => m.type === 'error' && m.id === 'y');
    assert.equal(y.error.code, 'AGENTD_INVALID_REQUEST');
    assert.match(y.error.message, /input/);
    const z = await client.next((m) => m.type === 'error' && m.id === 'z');
    assert.equal(z.error.code, 'AGENTD_NOT_FOUND');
    const w = await client.next((m) => m.type === 'error' && m.id === 'w');
    assert.equal(w.error.code, 'AGENTD_NOT_FOUND');
    await client.next((m) => m.type === 'pong' && m.id === 'p');
    assert.ok(
      client.messages.some((m) => m.type === 'error' && m.id === undefined),
      'bad JSON answered',
    );
    client.ws.close();
  });

  it('closes a consumer that stops reading with code 4008 once it is a bound behind', async () => {
    const client = new Client(url);
    await client.opened();
    const connections = async (): Promise<number> => {
      const text = await agentd.runtime.metrics.render();
      return Number(/^agentd_websocket_connections (\d+)/m.exec(text)?.[1]);
    };
    // Earlier tests' connections finish closing first: this one must be the only one.
    for (let i = 0; i < 250 && (await connections()) !== 1; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    const before = await connections();
    assert.equal(before, 1);
    // Stop reading: the server's buffer for this client grows until the bound.
    (client.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    client.send({
      type: 'submit',
      id: 'big',
      agent: 'assistant',
      input: 'a lot',
      model: 'mock/mock?tokens=100000',
    });
    for (let i = 0; i < 500 && (await connections()) === before; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(await connections(), before - 1, 'the server gave up on the client');
    (client.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const closed = await client.closed;
    assert.equal(closed.code, 4008);
    assert.match(closed.reason, /slow consumer/);
  });

  it('authenticates the upgrade with the same API keys', async () => {
    const secured = await startAgentd({
      config: {
        ...oneMockModel(mock.url, 'mock-small'),
        auth: { keys: [{ id: 'k1', hash: hashKey('sk-ws-test'), tenant: 't1' }] },
        agents: { assistant: { tools: ['calculator'] } },
      },
    });
    try {
      const wsUrl = `${secured.url.replace('http', 'ws')}/v1/ws`;
      const refused = new WebSocket(wsUrl);
      const status = await new Promise<number>((resolve) =>
        refused.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)),
      );
      assert.equal(status, 401);
      const client = new Client(wsUrl, { authorization: 'Bearer sk-ws-test' });
      await client.opened();
      client.send({ type: 'submit', id: 1, agent: 'assistant', input: 'What is 1+1?' });
      const done = await client.next((m) => m.event === 'task.completed');
      assert.equal(done.data.result, 'The result is 2.');
      client.ws.close();
      const byQuery = new Client(`${wsUrl}?api_key=sk-ws-test`);
      await byQuery.opened();
      byQuery.ws.close();
    } finally {
      await secured.close();
    }
  });
});
