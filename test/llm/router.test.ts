import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import {
  type AgentdError,
  CancelledError,
  ContentPolicyError,
  ContextLengthExceededError,
  ProviderRateLimitedError,
  ProviderUnavailableError,
} from '../../src/errors.js';
import { Cancellation } from '../../src/lib/cancellation.js';
import type { CallOptions, ChatRequest, ChatResult, Provider } from '../../src/llm/index.js';
import { ModelRouter } from '../../src/llm/index.js';

/** A provider that answers each model name from a script of outcomes (an error or a text). */
class ScriptedProvider implements Provider {
  readonly name = 'fake';
  readonly calls: string[] = [];
  constructor(private readonly scripts: Record<string, (AgentdError | string)[]>) {}

  async chat(request: ChatRequest, options: CallOptions): Promise<ChatResult> {
    this.calls.push(request.model);
    const next = this.scripts[request.model]?.shift() ?? 'ok';
    options.sink?.onText?.('partial ');
    if (typeof next !== 'string') throw next;
    return {
      content: next,
      toolCalls: [],
      finishReason: 'stop',
      usage: { input_tokens: 1_000_000, output_tokens: 1_000_000 },
      usageEstimated: false,
      providerModel: request.model,
      ttftMs: 1,
      skippedChunks: 0,
    };
  }

  async close(): Promise<void> {}
}

function router(scripts: Record<string, (AgentdError | string)[]>, extra: Record<string, unknown> = {}) {
  const { config } = loadConfig({
    env: {},
    config: {
      providers: { fake: { base_url: 'http://127.0.0.1:1/v1' } },
      models: {
        a: { provider: 'fake', input_usd_per_mtok: 1, output_usd_per_mtok: 2, fallbacks: ['b'] },
        b: { provider: 'fake', input_usd_per_mtok: 3, output_usd_per_mtok: 4 },
        big: { provider: 'fake', input_usd_per_mtok: 10, output_usd_per_mtok: 10 },
        small: { provider: 'fake', context_fallback: 'big' },
      },
      tiers: { small: ['small'], medium: ['a', 'b'], large: ['big'] },
      llm: {
        retry: { max_attempts: 2, base_delay_ms: 1, max_delay_ms: 2, max_retry_after_ms: 50 },
        breaker: { min_requests: 2, failure_rate: 0.5, open_ms: 60_000, window_ms: 10_000 },
      },
      ...extra,
    },
  });
  const provider = new ScriptedProvider(scripts);
  return { provider, router: new ModelRouter(config, new Map([['fake', provider]])) };
}

const request = { messages: [{ role: 'user' as const, content: 'hi' }] };

describe('ModelRouter', () => {
  it('maps tiers and modes to chains, and an explicit model to itself plus its fallbacks', () => {
    const { router: r } = router({});
    assert.deepEqual(
      r.resolve({ tier: 'medium' }, undefined).map((m) => m.id),
      ['a', 'b'],
    );
    assert.deepEqual(
      r.resolve({ mode: 'simple' }, undefined).map((m) => m.id),
      ['small'],
    );
    assert.deepEqual(
      r.resolve({ mode: 'research' }, undefined).map((m) => m.id),
      ['big'],
    );
    assert.deepEqual(
      r.resolve({}, 'large').map((m) => m.id),
      ['big'],
    );
    assert.deepEqual(
      r.resolve({ model: 'a' }, 'large').map((m) => m.id),
      ['a', 'b'],
    );
    assert.deepEqual(
      r.resolve({}, undefined).map((m) => m.id),
      ['a', 'b'],
      'medium by default',
    );
    assert.equal(r.resolve({ model: 'fake/raw-name' }, undefined)[0]!.upstreamModel, 'raw-name');
    assert.throws(() => r.resolve({ model: 'nope' }, undefined), /unknown model "nope"/);
  });

  it('retries a transient failure, then answers and bills only the answering attempt', async () => {
    const { router: r, provider } = router({ a: [new ProviderUnavailableError('down'), 'fine'] });
    const discarded: string[] = [];
    const call = await r.chat(r.resolve({ model: 'a' }, undefined), request, {
      sink: { onDiscard: (e, model) => discarded.push(`${model}:${e.code}`) },
    });
    assert.equal(call.result.content, 'fine');
    assert.equal(call.model, 'a');
    assert.deepEqual(provider.calls, ['a', 'a']);
    assert.equal(call.costUsd, 3, '1M input at $1 + 1M output at $2');
    assert.deepEqual(
      call.failedAttempts.map((f) => f.code),
      ['AGENTD_PROVIDER_UNAVAILABLE'],
    );
    assert.deepEqual(
      discarded,
      ['a:AGENTD_PROVIDER_UNAVAILABLE'],
      'partial output of the failed attempt is discarded',
    );
  });

  it('fails over to the next model when retries run out, and names the model that answered', async () => {
    const down = () => new ProviderUnavailableError('down');
    const { router: r, provider } = router({ a: [down(), down()], b: ['from b'] });
    const call = await r.chat(r.resolve({ model: 'a' }, undefined), request, {});
    assert.equal(call.model, 'b');
    assert.equal(call.result.content, 'from b');
    assert.equal(call.costUsd, 7, 'priced at b');
    assert.deepEqual(provider.calls, ['a', 'a', 'b']);
  });

  it('fails over at once on a Retry-After beyond the cap', async () => {
    const { router: r, provider } = router({
      a: [new ProviderRateLimitedError('slow down', { retryAfterMs: 60_000 })],
    });
    const call = await r.chat(r.resolve({ model: 'a' }, undefined), request, {});
    assert.equal(call.model, 'b');
    assert.deepEqual(provider.calls, ['a', 'b']);
  });

  it('routes a context overflow to the larger-context model without retrying the same one', async () => {
    const { router: r, provider } = router({ small: [new ContextLengthExceededError('too long')] });
    const call = await r.chat(r.resolve({ model: 'small' }, undefined), request, {});
    assert.equal(call.model, 'big');
    assert.deepEqual(provider.calls, ['small', 'big']);
  });

  it('fails with the provider reason on a content-policy refusal', async () => {
    const { router: r, provider } = router({ a: [new ContentPolicyError('refused by policy')] });
    await assert.rejects(r.chat(r.resolve({ model: 'a' }, undefined), request, {}), /refused by policy/);
    assert.deepEqual(provider.calls, ['a']);
  });

  it('skips a model whose circuit is open, and answers 503 when every circuit is open', async () => {
    const down = () => new ProviderUnavailableError('down');
    const { router: r, provider } = router({ b: [down(), down(), down(), down()] });
    const chain = r.resolve({ model: 'b' }, undefined);
    await assert.rejects(r.chat(chain, request, {}), { code: 'AGENTD_PROVIDER_UNAVAILABLE' });
    assert.equal(chain[0]!.breaker.state, 'open');
    const before = provider.calls.length;
    await assert.rejects(r.chat(chain, request, {}), (err: AgentdError) => {
      assert.equal(err.code, 'AGENTD_CIRCUIT_OPEN');
      assert.equal(err.status, 503);
      assert.ok(err.retryAfterMs! > 0);
      return true;
    });
    assert.equal(provider.calls.length, before, 'no request reaches an open circuit');
    const viaFallback = await r.chat(r.resolve({ model: 'a' }, undefined), request, {});
    assert.equal(viaFallback.model, 'a');
  });

  it('stops at once when the caller aborts', async () => {
    const { router: r } = router({ a: [new ProviderUnavailableError('down')] });
    const cancellation = new Cancellation();
    cancellation.abortWith(new CancelledError('stop'));
    await assert.rejects(r.chat(r.resolve({ model: 'a' }, undefined), request, { cancellation }), {
      code: 'AGENTD_CANCELLED',
    });
  });
});
