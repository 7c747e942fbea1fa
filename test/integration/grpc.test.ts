import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  type Client,
  type ClientReadableStream,
  credentials,
  type GrpcObject,
  loadPackageDefinition,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { hashKey } from '../../src/admission/index.js';
import { MockLlmServer } from '../../src/llm/index.js';
import { GrpcServer } from '../../src/server/index.js';
import { oneMockModel, startAgentd, type TestAgentd } from '../helpers/agentd.js';

const PROTO = fileURLToPath(new URL('../../proto/', import.meta.url));

type Unary = (
  request: unknown,
  metadata: Metadata,
  options: { deadline?: number },
  callback: (err: ServiceError | null, value?: any) => void,
) => void;
type AgentClient = Client &
  Record<'ExecuteTask' | 'GetTask' | 'CancelTask' | 'ListAgents', Unary> & {
    StreamExecuteTask(
      request: unknown,
      metadata?: Metadata,
      options?: { deadline?: number },
    ): ClientReadableStream<any>;
  };

function load(
  file: string,
  path: string[],
): new (
  address: string,
  creds: ReturnType<typeof credentials.createInsecure>,
) => any {
  const definition = loadSync(file, {
    includeDirs: [PROTO],
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
  });
  let node: unknown = loadPackageDefinition(definition);
  for (const part of path) node = (node as GrpcObject)[part];
  return node as never;
}

function unary(
  client: AgentClient,
  method: 'ExecuteTask' | 'GetTask' | 'CancelTask' | 'ListAgents',
  request: unknown,
  options: { deadline?: number; metadata?: Metadata } = {},
): Promise<any> {
  return new Promise((resolve, reject) => {
    client[method](
      request,
      options.metadata ?? new Metadata(),
      { deadline: options.deadline },
      (err, value) => (err === null ? resolve(value) : reject(err)),
    );
  });
}

describe('gRPC API', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;
  let grpc: GrpcServer;
  let client: AgentClient;
  let address: string;

  before(async () => {
    mock = await MockLlmServer.start();
    agentd = await startAgentd({
      config: {
        ...oneMockModel(mock.url, 'mock-small'),
        agents: {
          assistant: { tools: ['calculator'] },
          limited: { tools: [] },
        },
        limits: { agents: { limited: { requests_per_second: 1, burst: 1 } } },
      },
    });
    grpc = new GrpcServer(agentd.runtime);
    const port = await grpc.listen('127.0.0.1', 0);
    address = `127.0.0.1:${port}`;
    const AgentService = load('agentd.proto', ['agentd', 'v1', 'AgentService']);
    client = new AgentService(address, credentials.createInsecure());
  });
  after(async () => {
    client.close();
    await grpc.close(0);
    await agentd.close();
    await mock.close();
  });

  it('ExecuteTask runs a task to its end', async () => {
    const task = await unary(client, 'ExecuteTask', { agent: 'assistant', input: 'What is 17*23?' });
    assert.equal(task.status, 'succeeded');
    assert.equal(task.result, 'The result is 391.');
    assert.equal(task.tool_calls, 1);
    assert.ok(task.usage.total_tokens > 0);
    const again = await unary(client, 'GetTask', { id: task.id });
    assert.equal(again.id, task.id);
  });

  it('StreamExecuteTask streams events ending with task.completed', async () => {
    const stream = client.StreamExecuteTask({ agent: 'assistant', input: 'What is 2+3?' });
    const events: any[] = [];
    for await (const event of stream) events.push(event);
    assert.equal(events.at(-1).type, 'task.completed');
    assert.equal(JSON.parse(events.at(-1).data_json).result, 'The result is 5.');
    assert.ok(events.some((e) => e.type === 'tool.started'));
    assert.ok(events.every((e) => e.task_id === events[0].task_id));
  });

  it('ListAgents lists the agents', async () => {
    const answer = await unary(client, 'ListAgents', {});
    assert.deepEqual(
      answer.agents.map((a: { name: string }) => a.name),
      ['assistant', 'limited'],
    );
  });

  it('maps a call deadline to the task timeout: DEADLINE_EXCEEDED', async () => {
    await assert.rejects(
      unary(
        client,
        'ExecuteTask',
        { agent: 'assistant', input: 'slow', model: 'mock/mock?tokens=100&interval_ms=20' },
        { deadline: Date.now() + 300 },
      ),
      (err: ServiceError) => err.code === status.DEADLINE_EXCEEDED,
    );
    // The task itself was given the deadline as its time limit: it stops, it does not run on.
    const page = await agentd.runtime.listTasks({ tenant_id: 'default', limit: 1 });
    let record = page.items[0]!;
    assert.equal(record.input, 'slow');
    for (let i = 0; i < 100 && (record.status === 'running' || record.status === 'queued'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      record = (await agentd.runtime.getTask(record.id, 'default'))!;
    }
    assert.ok(record.status === 'failed' || record.status === 'cancelled', record.status);
    assert.ok(['AGENTD_TIMEOUT', 'AGENTD_CANCELLED'].includes(record.error!.code), record.error!.code);
  });

  it('cancels the task when the client cancels the call', async () => {
    const stream = client.StreamExecuteTask({
      agent: 'assistant',
      input: 'long',
      model: 'mock/mock?tokens=500&interval_ms=10',
    });
    let taskId = '';
    await new Promise<void>((resolve) => {
      stream.on('data', (event: { task_id: string; type: string }) => {
        taskId = event.task_id;
        if (event.type === 'llm.delta') {
          stream.cancel();
          resolve();
        }
      });
    });
    stream.on('error', () => {});
    let state = 'running';
    for (let i = 0; i < 100 && state === 'running'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      state = (await unary(client, 'GetTask', { id: taskId })).status;
    }
    assert.equal(state, 'cancelled');
  });

  it('maps agentd errors to gRPC statuses with the agentd code in the trailers', async () => {
    const expectCode = (code: status, agentdCode: string) => (err: ServiceError) => {
      assert.equal(err.code, code, err.details);
      assert.equal(err.metadata.get('agentd-code')[0], agentdCode);
      return true;
    };
    await assert.rejects(
      unary(client, 'ExecuteTask', { agent: 'assistant', input: 'hi', tools: ['http_fetch'] }),
      expectCode(status.PERMISSION_DENIED, 'AGENTD_TOOL_FORBIDDEN'),
    );
    await assert.rejects(
      unary(client, 'ExecuteTask', { agent: 'nobody', input: 'hi' }),
      expectCode(status.NOT_FOUND, 'AGENTD_NOT_FOUND'),
    );
    await assert.rejects(
      unary(client, 'GetTask', { id: 'nope' }),
      expectCode(status.NOT_FOUND, 'AGENTD_NOT_FOUND'),
    );
    await unary(client, 'ExecuteTask', { agent: 'limited', input: 'one' }).catch(() => undefined);
    await assert.rejects(
      unary(client, 'ExecuteTask', { agent: 'limited', input: 'two' }),
      expectCode(status.RESOURCE_EXHAUSTED, 'AGENTD_RATE_LIMITED'),
    );
    await assert.rejects(
      unary(client, 'ExecuteTask', { agent: 'assistant', input: 'hi', model: 'mock/mock?fault=503' }),
      (err: ServiceError) => err.code === status.UNAVAILABLE,
    );
  });

  it('serves grpc.health.v1', async () => {
    const Health = load('grpc/health/v1/health.proto', ['grpc', 'health', 'v1', 'Health']);
    const health = new Health(address, credentials.createInsecure());
    const answer = await new Promise<any>((resolve, reject) =>
      health.Check({ service: '' }, (err: ServiceError | null, value: unknown) =>
        err ? reject(err) : resolve(value),
      ),
    );
    assert.equal(answer.status, 'SERVING');
    const unknown = await new Promise<ServiceError>((resolve) =>
      health.Check({ service: 'nope' }, (err: ServiceError) => resolve(err)),
    );
    assert.equal(unknown.code, status.NOT_FOUND);
    health.close();
  });

  it('requires an API key when keys exist', async () => {
    const secured = await startAgentd({
      config: {
        ...oneMockModel(mock.url, 'mock-small'),
        auth: { keys: [{ id: 'k1', hash: hashKey('sk-grpc-test'), tenant: 't1' }] },
        agents: { assistant: { tools: ['calculator'] } },
      },
    });
    const server = new GrpcServer(secured.runtime);
    const port = await server.listen('127.0.0.1', 0);
    const AgentService = load('agentd.proto', ['agentd', 'v1', 'AgentService']);
    const securedClient: AgentClient = new AgentService(`127.0.0.1:${port}`, credentials.createInsecure());
    try {
      await assert.rejects(
        unary(securedClient, 'ListAgents', {}),
        (err: ServiceError) => err.code === status.UNAUTHENTICATED,
      );
      const metadata = new Metadata();
      metadata.set('authorization', 'Bearer sk-grpc-test');
      const task = await unary(
        securedClient,
        'ExecuteTask',
        { agent: 'assistant', input: 'What is 1+1?' },
        { metadata },
      );
      assert.equal(task.result, 'The result is 2.');
    } finally {
      securedClient.close();
      await server.close(0);
      await secured.close();
    }
  });
});
