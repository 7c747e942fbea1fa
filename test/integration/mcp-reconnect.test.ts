import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createTestMcpServer } from '../fixtures/mcp-server.js';
import { call, startAgentd, type TestAgentd, tempDir } from '../helpers/agentd.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/mcp-server.ts', import.meta.url));

/** The test MCP server over streamable HTTP at /mcp, on `port` (0: a free one). */
async function startHttpMcp(port: number): Promise<{ port: number; close(): Promise<void> }> {
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
  await new Promise<void>((resolve) => http.listen(port, '127.0.0.1', resolve));
  return {
    port: (http.address() as AddressInfo).port,
    async close() {
      await server.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` holds, at most `tries` times. */
async function until(what: string, check: () => boolean | Promise<boolean>, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await pause(50);
  }
  assert.fail(`gave up waiting: ${what}`);
}

describe('MCP reconnection', () => {
  const dir = tempDir('agentd-mcp-');
  const pidFile = join(dir.path, 'calc.pid');
  let httpMcp: { port: number; close(): Promise<void> };
  let agentd: TestAgentd;

  const execute = (agent: string, tool: string, args: Record<string, unknown>) =>
    call(agentd.url, 'POST', `/v1/tools/${tool}/execute`, { agent, arguments: args });

  before(async () => {
    httpMcp = await startHttpMcp(0);
    agentd = await startAgentd({
      config: {
        tools: { breaker: { min_requests: 2, failure_rate: 0.5, open_ms: 100 } },
        agents: {
          local: {
            tool_timeout_ms: 60_000,
            mcp_servers: {
              calc: {
                transport: 'stdio',
                command: process.execPath,
                args: ['--import', 'tsx', FIXTURE, '--stdio', '--dynamic', '--pid-file', pidFile],
              },
            },
          },
          remote: {
            mcp_servers: { web: { transport: 'http', url: `http://127.0.0.1:${httpMcp.port}/mcp` } },
          },
        },
      },
    });
  });
  after(async () => {
    await agentd.close();
    await httpMcp.close();
    dir.remove();
  });

  it('stdio: a call in flight when the server dies fails with AGENTD_TOOL_UNAVAILABLE; a new process serves later calls', async () => {
    const first = readFileSync(pidFile, 'utf8');
    const inFlight = execute('local', 'calc__hang', {});
    await until('the hang call reached the server', () => existsSync(`${pidFile}.hang`));
    process.kill(Number(first), 'SIGKILL');
    const failed = await inFlight;
    assert.equal(failed.status, 503, JSON.stringify(failed.body));
    assert.equal(failed.body.error.code, 'AGENTD_TOOL_UNAVAILABLE');
    assert.match(failed.body.error.message, /MCP server "calc" went away during the call to hang/);
    assert.equal(failed.body.error.retryable, true);

    await until('a new server process', () => readFileSync(pidFile, 'utf8') !== first);
    let answer: Awaited<ReturnType<typeof execute>> | undefined;
    await until('the reconnected server answers', async () => {
      answer = await execute('local', 'calc__add', { a: 2, b: 3 });
      return answer.status === 200;
    });
    assert.deepEqual(answer!.body.result, { result: 5 });
    const metrics = await call(agentd.url, 'GET', '/metrics');
    assert.match(
      metrics.body,
      /agentd_tool_calls_total\{tool="calc__hang",status="AGENTD_TOOL_UNAVAILABLE"\} 1/,
    );
    assert.match(metrics.body, /agentd_tool_calls_total\{tool="calc__add",status="ok"\} 1/);
  });

  it('streamable HTTP: calls fail cleanly while the server is down, and work again after it restarts', async () => {
    assert.equal((await execute('remote', 'web__shout', { text: 'a' })).body.result, 'A');
    const port = httpMcp.port;
    await httpMcp.close();
    const down = await execute('remote', 'web__shout', { text: 'b' });
    assert.equal(down.status, 503, JSON.stringify(down.body));
    assert.ok(
      down.body.error.code === 'AGENTD_TOOL_UNAVAILABLE' || down.body.error.code === 'AGENTD_CIRCUIT_OPEN',
      down.body.error.code,
    );
    // The tool's breaker opens on the failures and lets a probe through once the server is back.
    for (let i = 0; i < 3; i++) await execute('remote', 'web__shout', { text: 'c' });
    httpMcp = await startHttpMcp(port);
    let answer: Awaited<ReturnType<typeof execute>> | undefined;
    await until('the restarted server answers in a new session', async () => {
      answer = await execute('remote', 'web__shout', { text: 'back' });
      return answer.status === 200;
    });
    assert.equal(answer!.body.result, 'BACK');
    const metrics = await call(agentd.url, 'GET', '/metrics');
    assert.match(
      metrics.body,
      /agentd_tool_calls_total\{tool="web__shout",status="AGENTD_TOOL_UNAVAILABLE"\} [1-9]/,
    );
  });

  it("follows a server's tool list: list_changed adds and removes tools, and a restarted server is listed again", async () => {
    const extraCode = async () => (await execute('local', 'calc__extra', {})).body.error?.code;
    assert.equal(await extraCode(), 'AGENTD_TOOL_NOT_FOUND');
    assert.equal((await execute('local', 'calc__toggle_extra', {})).body.result, 'on');
    await until('the new tool is offered', async () => (await extraCode()) === undefined);
    assert.equal((await execute('local', 'calc__extra', {})).body.result, 'extra');
    const tools = await call(agentd.url, 'GET', '/v1/tools');
    assert.ok(JSON.stringify(tools.body).includes('calc__extra'), 'listed by GET /v1/tools');
    assert.equal((await execute('remote', 'calc__extra', {})).body.error?.code, 'AGENTD_TOOL_FORBIDDEN');

    assert.equal((await execute('local', 'calc__toggle_extra', {})).body.result, 'off');
    await until('the removed tool is gone', async () => (await extraCode()) === 'AGENTD_TOOL_NOT_FOUND');

    // On again, then the process dies: the new one starts without it, and agentd lists it again.
    assert.equal((await execute('local', 'calc__toggle_extra', {})).body.result, 'on');
    await until('the new tool is offered again', async () => (await extraCode()) === undefined);
    const first = readFileSync(pidFile, 'utf8');
    process.kill(Number(first), 'SIGKILL');
    await until('a new server process', () => readFileSync(pidFile, 'utf8') !== first);
    await until(
      'the restarted server is listed again',
      async () => (await extraCode()) === 'AGENTD_TOOL_NOT_FOUND',
    );
    assert.deepEqual((await execute('local', 'calc__add', { a: 1, b: 1 })).body.result, { result: 2 });
  });
});
