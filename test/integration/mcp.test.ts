import assert from 'node:assert/strict';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { MockLlmServer } from '../../src/llm/index.js';
import { createTestMcpServer } from '../fixtures/mcp-server.js';
import { call, oneMockModel, startAgentd, type TestAgentd } from '../helpers/agentd.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/mcp-server.ts', import.meta.url));

/** Serves the test MCP server over streamable HTTP at /mcp. */
async function startHttpMcp(): Promise<{ url: string; close(): Promise<void> }> {
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => crypto.randomUUID() });
  const server = createTestMcpServer();
  await server.connect(transport);
  const http: HttpServer = createServer((req, res) => {
    if (req.url !== '/mcp') {
      res.writeHead(404).end();
      return;
    }
    void transport.handleRequest(req, res);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    async close() {
      await server.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

const forced = (tool: string, args: unknown): string => `mock/mock?call=${tool}&args=${JSON.stringify(args)}`;

describe('MCP tools', () => {
  let mock: MockLlmServer;
  let httpMcp: { url: string; close(): Promise<void> };
  let agentd: TestAgentd;

  before(async () => {
    mock = await MockLlmServer.start();
    httpMcp = await startHttpMcp();
    agentd = await startAgentd({
      config: {
        ...oneMockModel(mock.url, 'mock-small'),
        agents: {
          local: {
            tool_timeout_ms: 300,
            mcp_servers: {
              calc: {
                transport: 'stdio',
                command: process.execPath,
                args: ['--import', 'tsx', FIXTURE, '--stdio'],
              },
            },
          },
          remote: {
            mcp_servers: { web: { transport: 'http', url: httpMcp.url, tools: ['shout'] } },
          },
          plain: { tools: ['calculator'] },
        },
      },
    });
  });
  after(async () => {
    await agentd.close();
    await httpMcp.close();
    await mock.close();
  });

  it('offers an MCP server tools to its agent as <server>__<tool>', async () => {
    const agents = await call(agentd.url, 'GET', '/v1/agents');
    const byName = Object.fromEntries(
      agents.body.data.map((a: { name: string; tools: string[] }) => [a.name, a.tools]),
    );
    assert.deepEqual(byName.local, ['calc__add', 'calc__shout', 'calc__fail', 'calc__hang']);
    assert.deepEqual(byName.remote, ['web__shout'], 'only the tools the config lists');
  });

  it('calls a tool over stdio in the agent loop', async () => {
    const res = await call(agentd.url, 'POST', '/v1/agents/local/run', {
      input: 'add them',
      model: forced('calc__add', { a: 2, b: 3 }),
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.result, 'The result is 5.');
    assert.equal(res.body.tool_calls, 1);
  });

  it('calls a tool over streamable HTTP', async () => {
    const res = await call(agentd.url, 'POST', '/v1/agents/remote/run', {
      input: 'shout',
      model: forced('web__shout', { text: 'hello' }),
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.result, 'The result is HELLO.');
  });

  it('applies the allow-list, argument validation, timeouts and error results like built-in tools', async () => {
    const outcome = async (agent: string, tool: string, args: unknown) => {
      const res = await call(agentd.url, 'POST', `/v1/agents/${agent}/run`, {
        input: 'go',
        model: forced(tool, args),
        stream: false,
      });
      const events = await call(agentd.url, 'GET', `/v1/tasks?limit=1`);
      const id = events.body.data[0].id;
      const sse = await fetch(`${agentd.url}/v1/tasks/${id}/events`).then((r) => r.text());
      const line = sse.split('\n').find((l) => l.startsWith('data: ') && l.includes('"ok":'));
      assert.ok(res.status === 200 || res.status >= 400);
      return JSON.parse(line!.slice(6)) as { ok: boolean; error?: { code: string } };
    };
    assert.equal((await outcome('plain', 'calc__add', { a: 1, b: 2 })).error?.code, 'AGENTD_TOOL_FORBIDDEN');
    assert.equal((await outcome('remote', 'web__add', { a: 1, b: 2 })).error?.code, 'AGENTD_TOOL_FORBIDDEN');
    assert.equal(
      (await outcome('local', 'calc__add', { a: 'x' })).error?.code,
      'AGENTD_TOOL_ARGUMENTS_INVALID',
    );
    assert.equal((await outcome('local', 'calc__fail', {})).error?.code, 'AGENTD_TOOL_FAILED');
    assert.equal((await outcome('local', 'calc__hang', {})).error?.code, 'AGENTD_TOOL_TIMEOUT');
    const metrics = await call(agentd.url, 'GET', '/metrics');
    assert.match(metrics.body, /agentd_tool_calls_total\{tool="calc__add",status="ok"\} [1-9]/);
  });
});
