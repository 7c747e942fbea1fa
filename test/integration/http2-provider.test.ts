import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MockLlmServer } from '../../src/llm/index.js';
import { call, startAgentd, type TestAgentd, tempDir } from '../helpers/agentd.js';
import { selfSignedCertificate } from '../helpers/tls.js';

describe('a provider over HTTP/2 and TLS with a private CA', () => {
  const dir = tempDir('agentd-tls-');
  let mock: MockLlmServer;
  let agentd: TestAgentd;
  let tls: ReturnType<typeof selfSignedCertificate>;

  before(async () => {
    tls = selfSignedCertificate(dir.path);
    mock = await MockLlmServer.start({ tls: { key: tls.key, cert: tls.cert } });
    agentd = await startAgentd({
      config: {
        providers: { mock: { type: 'mock', base_url: mock.url, http2: true, ca_file: tls.certFile } },
        models: { m: { provider: 'mock', name: 'mock' } },
        tiers: { small: ['m'], medium: ['m'], large: ['m'] },
      },
    });
  });
  after(async () => {
    await agentd.close();
    await mock.close();
    dir.remove();
  });

  it('multiplexes concurrent tasks as HTTP/2 streams', async () => {
    assert.match(mock.url, /^https:/);
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        call(agentd.url, 'POST', '/v1/agents/assistant/run', { input: 'What is 6*7?' }),
      ),
    );
    for (const res of results) assert.equal(res.body.result, 'The result is 42.');
    assert.equal(mock.http2Requests, 40, 'every model call went over HTTP/2');
  });

  it('runs many streams at once on one connection', async () => {
    const own = await MockLlmServer.start({ tls: { key: tls.key, cert: tls.cert } });
    const slow = await startAgentd({
      config: {
        providers: {
          mock: { type: 'mock', base_url: own.url, http2: true, connections: 1, ca_file: tls.certFile },
        },
        models: { m: { provider: 'mock', name: 'mock?interval_ms=100&tokens=5' } },
        tiers: { small: ['m'], medium: ['m'], large: ['m'] },
        agents: { slow: { model: 'm' } },
      },
    });
    try {
      const results = await Promise.all(
        Array.from({ length: 10 }, () => call(slow.url, 'POST', '/v1/agents/slow/run', { input: 'hi' })),
      );
      for (const res of results) assert.equal(res.body.status, 'succeeded');
      assert.ok(
        own.peakStreamsPerConnection > 1,
        `streams overlapped on the one connection (peak ${own.peakStreamsPerConnection})`,
      );
    } finally {
      await slow.close();
      await own.close();
    }
  });

  it('refuses an untrusted certificate with a clear provider error', async () => {
    const other = await startAgentd({
      config: {
        providers: { mock: { type: 'mock', base_url: mock.url, http2: true } },
        models: { m: { provider: 'mock', name: 'mock' } },
        tiers: { small: ['m'], medium: ['m'], large: ['m'] },
        llm: { retry: { max_attempts: 1 } },
      },
    });
    try {
      const res = await call(other.url, 'POST', '/v1/agents/assistant/run', { input: 'hi' });
      assert.equal(res.status, 502);
      assert.equal(res.body.error.code, 'AGENTD_PROVIDER_UNAVAILABLE');
      assert.match(res.body.error.message, /certificate/i);
    } finally {
      await other.close();
    }
  });
});
