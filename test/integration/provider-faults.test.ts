import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MockLlmServer } from '../../src/llm/index.js';
import { call, readSse, startAgentd, type TestAgentd } from '../helpers/agentd.js';

/**
 * Every provider fault from the core issue, end to end: client → agentd HTTP → router → real
 * HTTP to the mock model, which misbehaves as each model string asks.
 */
describe('provider faults over real sockets', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;

  // `tight` (the same mock) has the short deadlines the timeout tests wait for; everything else
  // gets deadlines a loaded machine cannot reach, so that counted attempts are the policy's alone.
  const config = (mockUrl: string, idleMs = 10_000) => ({
    providers: {
      mock: { type: 'mock', base_url: mockUrl },
      tight: {
        type: 'mock',
        base_url: mockUrl,
        timeouts: { headers_ms: 300, first_token_ms: 600, idle_ms: 300 },
      },
    },
    models: {
      backup: { provider: 'mock', name: 'backup', input_usd_per_mtok: 1, output_usd_per_mtok: 2 },
      flaky: { provider: 'mock', name: 'mock?fault=500&id=flaky', fallbacks: ['backup'] },
      limited: { provider: 'mock', name: 'mock?fault=429&retry_after=120&id=limited', fallbacks: ['backup'] },
      cutting: { provider: 'mock', name: 'mock?fault=cut&id=cutting', fallbacks: ['backup'] },
      'small-ctx': {
        provider: 'mock',
        name: 'mock?fault=context_length&id=smallctx',
        context_fallback: 'big-ctx',
      },
      'big-ctx': { provider: 'mock', name: 'big' },
      flapping: { provider: 'mock', name: 'mock?fault=500&times=4&id=flap', fallbacks: ['backup'] },
    },
    tiers: { small: ['backup'], medium: ['backup'], large: ['backup'] },
    llm: {
      retry: { max_attempts: 3, base_delay_ms: 10, max_delay_ms: 40, max_retry_after_ms: 3000 },
      timeouts: { headers_ms: 10_000, first_token_ms: 10_000, idle_ms: idleMs },
      breaker: { min_requests: 3, failure_rate: 0.5, open_ms: 400, window_ms: 60_000 },
    },
    agents: { plain: { model: 'backup', system_prompt: 'Be brief.' } },
  });

  before(async () => {
    mock = await MockLlmServer.start();
    agentd = await startAgentd({ config: config(mock.url) });
  });
  after(async () => {
    await agentd.close();
    await mock.close();
  });

  const run = (model: string, extra: Record<string, unknown> = {}) =>
    call(agentd.url, 'POST', '/v1/agents/plain/run', { input: 'hello', model, ...extra });

  it('429 with Retry-After: waits that long, then succeeds', async () => {
    const model = 'mock?fault=429&retry_after=1&times=1&id=ra';
    const started = performance.now();
    const res = await run(`mock/${model}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'succeeded');
    assert.equal(mock.requests(model), 2);
    assert.ok(performance.now() - started >= 950, 'the retry waited for Retry-After');
  });

  it('429 with a Retry-After beyond the cap: fails over at once instead of waiting', async () => {
    const res = await run('limited');
    assert.equal(res.status, 200);
    assert.equal(res.body.model, 'backup');
    assert.equal(mock.requests('mock?fault=429&retry_after=120&id=limited'), 1);
  });

  it('429 without Retry-After: backs off and retries a bounded number of times', async () => {
    const transient = 'mock?fault=429&times=2&id=backoff';
    const ok = await run(`mock/${transient}`);
    assert.equal(ok.body.status, 'succeeded');
    assert.equal(mock.requests(transient), 3);
    const persistent = 'mock?fault=429&id=always429';
    const refused = await run(`mock/${persistent}`);
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, 'AGENTD_PROVIDER_RATE_LIMITED');
    assert.equal(mock.requests(persistent), 3, 'exactly max_attempts requests: never a tight loop');
  });

  it('5xx: bounded retries, then the fallback model answers and is named and billed alone', async () => {
    const res = await run('flaky');
    assert.equal(res.status, 200);
    assert.equal(res.body.model, 'backup');
    assert.equal(mock.requests('mock?fault=500&id=flaky'), 3);
    const { input_tokens, output_tokens } = res.body.usage;
    assert.ok(input_tokens > 0 && output_tokens > 0);
    const expected = (input_tokens * 1 + output_tokens * 2) / 1_000_000;
    assert.ok(
      Math.abs(res.body.cost_usd - expected) < 1e-12,
      'cost is the answering model at its price only',
    );
  });

  it('5xx with no fallback: a clear error that lists the attempts', async () => {
    const model = 'mock?fault=503&id=nofallback';
    const res = await run(`mock/${model}`);
    assert.equal(res.status, 502);
    assert.equal(res.body.error.code, 'AGENTD_PROVIDER_UNAVAILABLE');
    assert.equal(res.body.error.retryable, true);
    assert.equal(res.body.error.details.attempts.length, 3);
    assert.equal(res.body.task.status, 'failed');
    assert.equal(res.body.task.result, null);
  });

  it('connection reset before headers: retried, then succeeds', async () => {
    const model = 'mock?fault=reset&times=1&id=reset';
    const res = await run(`mock/${model}`);
    assert.equal(res.body.status, 'succeeded');
    assert.equal(mock.requests(model), 2);
  });

  it('no response at all: the header timeout fires (per attempt), then a clear timeout error', async () => {
    const res = await run('tight/mock?fault=hang&id=hang');
    assert.equal(res.status, 504);
    assert.equal(res.body.error.code, 'AGENTD_PROVIDER_TIMEOUT');
    assert.equal(res.body.error.details.attempts.length, 3);
    assert.match(JSON.stringify(res.body.error), /response headers|headers/);
  });

  it('slow first token: the time-to-first-token limit fires', async () => {
    const res = await run('tight/mock?ttft_ms=5000&id=slowttft');
    assert.equal(res.status, 504);
    assert.equal(res.body.error.code, 'AGENTD_PROVIDER_TIMEOUT');
    assert.match(res.body.error.message, /first token|first-token/);
  });

  it('a stream that goes silent mid-answer: the idle timeout fires', async () => {
    const res = await run('tight/mock?fault=stall&id=stall');
    assert.equal(res.status, 504);
    assert.equal(res.body.error.code, 'AGENTD_PROVIDER_TIMEOUT');
    assert.match(res.body.error.message, /silent/);
  });

  it('a stream cut before a finish reason is an error, never a truncated success', async () => {
    for (const fault of ['cut', 'cut_reset']) {
      const res = await run(`mock/mock?fault=${fault}&id=trunc-${fault}`);
      assert.equal(res.status, 502, fault);
      assert.equal(res.body.error.code, 'AGENTD_PROVIDER_STREAM_TRUNCATED');
      assert.equal(res.body.task.status, 'failed');
      assert.equal(res.body.task.result, null);
    }
  });

  it('a cut stream with a fallback restarts cleanly and tells listeners to discard the partial text', async () => {
    const { events } = await readSse(`${agentd.url}/v1/agents/plain/run`, {
      method: 'POST',
      body: { input: 'hello', model: 'cutting', stream: true },
    });
    const types = events.map((e) => e.event);
    assert.ok(types.includes('llm.discarded'));
    const discardAt = types.lastIndexOf('llm.discarded');
    const afterDiscard = events
      .slice(discardAt)
      .filter((e) => e.event === 'llm.delta')
      .map((e) => e.data.text)
      .join('');
    const final = events.at(-1)!;
    assert.equal(final.event, 'task.completed');
    assert.equal(final.data.status, 'succeeded');
    assert.equal(final.data.model, 'backup');
    assert.equal(
      final.data.result,
      afterDiscard,
      'the answer is exactly the text streamed after the discard',
    );
  });

  it('a malformed chunk is skipped and the process stays healthy', async () => {
    const res = await run('mock/mock?fault=malformed&id=malformed');
    assert.equal(res.body.status, 'succeeded');
    assert.match(res.body.result, /agentd runs agent tasks/);
    assert.equal((await call(agentd.url, 'GET', '/healthz')).status, 200);
  });

  it('an error event inside the stream is retried like a provider fault', async () => {
    const model = 'mock?fault=error_event&times=1&id=errevent';
    const res = await run(`mock/${model}`);
    assert.equal(res.body.status, 'succeeded');
    assert.equal(mock.requests(model), 2);
  });

  it('context_length_exceeded: no retry on the same model; routed to the larger-context model', async () => {
    const res = await run('small-ctx');
    assert.equal(res.status, 200);
    assert.equal(res.body.model, 'big-ctx');
    assert.equal(mock.requests('mock?fault=context_length&id=smallctx'), 1);
  });

  it("context_length_exceeded without a larger model: fails with the provider's reason, once", async () => {
    const model = 'mock?fault=context_length&id=ctxonly';
    const res = await run(`mock/${model}`);
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'AGENTD_CONTEXT_LENGTH_EXCEEDED');
    assert.match(res.body.error.message, /maximum context length is 8192 tokens/);
    assert.equal(mock.requests(model), 1);
  });

  it("content_policy_violation: fails with the provider's reason, no retry", async () => {
    const model = 'mock?fault=content_policy&id=policy';
    const res = await run(`mock/${model}`);
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'AGENTD_CONTENT_POLICY');
    assert.match(res.body.error.message, /safety system/);
    assert.equal(mock.requests(model), 1);
  });

  it('a flapping provider: the circuit opens, traffic goes to the fallback, a probe closes it on recovery', async () => {
    const name = 'mock?fault=500&times=4&id=flap';
    const first = await run('flapping');
    assert.equal(first.body.model, 'backup');
    assert.equal(mock.requests(name), 3, 'three failures open the circuit');
    const second = await run('flapping');
    assert.equal(second.body.model, 'backup');
    assert.equal(mock.requests(name), 3, 'an open circuit sends nothing to the flapping model');
    await new Promise((resolve) => setTimeout(resolve, 450));
    const third = await run('flapping');
    assert.equal(third.body.model, 'backup');
    assert.equal(mock.requests(name), 4, 'one half-open probe, which fails and re-opens the circuit');
    await new Promise((resolve) => setTimeout(resolve, 450));
    const fourth = await run('flapping');
    assert.equal(fourth.body.model, 'flapping', 'the probe succeeds: the circuit closes');
    assert.equal(mock.requests(name), 5);
    const fifth = await run('flapping');
    assert.equal(fifth.body.model, 'flapping');
  });

  it('a stream that ends without [DONE] after its finish reason is finalised at once, with usage', async () => {
    const patient = await startAgentd({ config: config(mock.url, 30_000) });
    try {
      for (const fault of ['no_done', 'no_done_hang']) {
        const started = performance.now();
        const res = await call(patient.url, 'POST', '/v1/agents/plain/run', {
          input: 'hello',
          model: `mock/mock?fault=${fault}&id=${fault}`,
        });
        assert.equal(res.body.status, 'succeeded', fault);
        assert.equal(res.body.usage.output_tokens, 12, 'usage reported by the provider, not estimated');
        assert.ok(performance.now() - started < 10_000, 'did not wait for the 30 s idle timeout');
      }
    } finally {
      await patient.close();
    }
  });
});
