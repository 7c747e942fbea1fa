import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ContentPolicyError,
  ContextLengthExceededError,
  InternalError,
  ProviderAuthError,
  ProviderRateLimitedError,
  ProviderStreamTruncatedError,
  ProviderTimeoutError,
  ProviderUnavailableError,
} from '../../src/errors.js';
import { backoffDelay, decideRetry, type RetryPolicy } from '../../src/llm/index.js';

const policy: RetryPolicy = { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 5000 };

describe('retry policy', () => {
  it('waits the Retry-After of a 429 when it is within the cap', () => {
    const decision = decideRetry(policy, new ProviderRateLimitedError('x', { retryAfterMs: 2000 }), 1);
    assert.deepEqual(decision, { kind: 'retry', delayMs: 2000 });
  });

  it('fails over at once when Retry-After exceeds the cap', () => {
    const decision = decideRetry(policy, new ProviderRateLimitedError('x', { retryAfterMs: 60_000 }), 1);
    assert.deepEqual(decision, { kind: 'next_model' });
  });

  it('backs off on a 429 without Retry-After, and moves on once attempts run out', () => {
    const first = decideRetry(policy, new ProviderRateLimitedError('x'), 1);
    assert.equal(first.kind, 'retry');
    assert.deepEqual(decideRetry(policy, new ProviderRateLimitedError('x'), 3), { kind: 'next_model' });
  });

  it('retries transient faults (5xx, timeouts, truncation) a bounded number of times', () => {
    for (const error of [
      new ProviderUnavailableError('x'),
      new ProviderTimeoutError('x'),
      new ProviderStreamTruncatedError('x'),
    ]) {
      assert.equal(decideRetry(policy, error, 1).kind, 'retry');
      assert.equal(decideRetry(policy, error, 2).kind, 'retry');
      assert.equal(decideRetry(policy, error, 3).kind, 'next_model');
    }
  });

  it('never retries a context overflow or a content-policy refusal on the same model', () => {
    assert.deepEqual(decideRetry(policy, new ContextLengthExceededError('x'), 1), {
      kind: 'context_fallback',
    });
    assert.deepEqual(decideRetry(policy, new ContentPolicyError('x'), 1), { kind: 'fail' });
  });

  it('tries the next model on bad credentials, and fails on unknown errors', () => {
    assert.deepEqual(decideRetry(policy, new ProviderAuthError('x'), 1), { kind: 'next_model' });
    assert.deepEqual(decideRetry(policy, new InternalError('x'), 1), { kind: 'fail' });
  });

  it('backs off exponentially with jitter between half and all of the ceiling', () => {
    assert.equal(
      backoffDelay(policy, 1, () => 0),
      50,
    );
    assert.equal(
      backoffDelay(policy, 1, () => 1),
      100,
    );
    assert.equal(
      backoffDelay(policy, 3, () => 1),
      400,
    );
    assert.equal(
      backoffDelay(policy, 10, () => 1),
      1000,
    );
    assert.equal(
      backoffDelay(policy, 10, () => 0),
      500,
    );
  });
});
