import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createHttpFetch, hostAllowed } from '../../src/tools/index.js';

describe('http_fetch', () => {
  let base = '';
  const server = createServer((req, res) => {
    if (req.url === '/big') res.end('y'.repeat(10_000));
    else if (req.url === '/redirect') {
      res.writeHead(302, { location: 'http://evil.example/' });
      res.end();
    } else res.end(JSON.stringify({ hello: 'world' }));
  });
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  const ctx = () => ({
    signal: new AbortController().signal,
    taskId: 't',
    tenantId: 'd',
    agent: 'a',
    callId: 'c',
    idempotencyKey: 'k',
  });

  it('matches hosts exactly or by *.suffix', () => {
    assert.ok(hostAllowed('api.example.com', ['*.example.com']));
    assert.ok(!hostAllowed('example.com.evil.net', ['*.example.com']));
    assert.ok(!hostAllowed('example.com', ['*.example.com']));
    assert.ok(hostAllowed('EXAMPLE.com', ['example.com']));
    assert.ok(!hostAllowed('anything', []));
  });

  it('fetches from an allowed host and caps the body size', async () => {
    const tool = createHttpFetch({ allowedHosts: ['127.0.0.1'], maxBytes: 100, timeoutMs: 2000 });
    const ok = (await tool.handler({ url: `${base}/` }, ctx())) as { status: number; body: string };
    assert.equal(ok.status, 200);
    assert.equal(ok.body, '{"hello":"world"}');
    const big = (await tool.handler({ url: `${base}/big` }, ctx())) as { body: string; truncated: boolean };
    assert.equal(big.body.length, 100);
    assert.equal(big.truncated, true);
  });

  it('returns redirects instead of following them off the allow-list', async () => {
    const tool = createHttpFetch({ allowedHosts: ['127.0.0.1'], maxBytes: 100, timeoutMs: 2000 });
    const result = (await tool.handler({ url: `${base}/redirect` }, ctx())) as {
      status: number;
      location: string;
    };
    assert.equal(result.status, 302);
    assert.equal(result.location, 'http://evil.example/');
  });

  it('refuses hosts off the list and non-HTTP schemes', async () => {
    const tool = createHttpFetch({ allowedHosts: ['example.com'], maxBytes: 100, timeoutMs: 2000 });
    await assert.rejects(async () => tool.handler({ url: `${base}/` }, ctx()), {
      code: 'AGENTD_TOOL_FORBIDDEN',
    });
    await assert.rejects(
      async () => tool.handler({ url: 'file:///etc/passwd' }, ctx()),
      /only http and https/,
    );
  });
});
