import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitBreaker } from '../../src/admission/index.js';

function breaker(overrides: Partial<ConstructorParameters<typeof CircuitBreaker>[1]> = {}) {
  let now = 1_000_000;
  const clock = {
    advance: (ms: number) => {
      now += ms;
    },
  };
  const b = new CircuitBreaker(
    'model',
    { windowMs: 10_000, minRequests: 4, failureRate: 0.5, openMs: 5_000, halfOpenProbes: 1, ...overrides },
    () => now,
  );
  return { b, clock };
}

describe('CircuitBreaker', () => {
  it('stays closed below the minimum number of requests', () => {
    const { b } = breaker();
    for (let i = 0; i < 3; i++) {
      assert.ok(b.tryAcquire());
      b.onFailure();
    }
    assert.equal(b.state, 'closed');
  });

  it('opens when the failure rate reaches the threshold, and refuses calls while open', () => {
    const { b } = breaker();
    b.onSuccess();
    b.onSuccess();
    b.onFailure();
    assert.equal(b.state, 'closed');
    b.onFailure();
    assert.equal(b.state, 'open');
    assert.equal(b.tryAcquire(), false);
    assert.equal(b.retryAfterMs(), 5_000);
  });

  it('lets one probe through after the open period; success closes it', () => {
    const { b, clock } = breaker();
    for (let i = 0; i < 4; i++) b.onFailure();
    clock.advance(5_000);
    assert.equal(b.state, 'half_open');
    assert.ok(b.tryAcquire());
    assert.equal(b.tryAcquire(), false, 'only one probe at a time');
    b.onSuccess();
    assert.equal(b.state, 'closed');
    assert.ok(b.tryAcquire());
  });

  it('re-opens when the probe fails', () => {
    const { b, clock } = breaker();
    for (let i = 0; i < 4; i++) b.onFailure();
    clock.advance(5_000);
    assert.ok(b.tryAcquire());
    b.onFailure();
    assert.equal(b.state, 'open');
    assert.equal(b.tryAcquire(), false);
  });

  it('forgets failures that fell out of the rolling window', () => {
    const { b, clock } = breaker();
    b.onFailure();
    b.onFailure();
    b.onFailure();
    clock.advance(11_000);
    b.onFailure();
    assert.equal(b.state, 'closed');
    assert.deepEqual(
      { requests: b.snapshot().requests, failures: b.snapshot().failures },
      { requests: 1, failures: 1 },
    );
  });

  it('counts slow successes as failures when slowCallMs is set', () => {
    const { b } = breaker({ slowCallMs: 100 });
    for (let i = 0; i < 4; i++) b.onSuccess(500);
    assert.equal(b.state, 'open');
  });

  it('reports transitions to a listener', () => {
    const { b, clock } = breaker();
    const seen: string[] = [];
    b.onStateChange((_name, from, to) => seen.push(`${from}->${to}`));
    for (let i = 0; i < 4; i++) b.onFailure();
    clock.advance(5_000);
    b.tryAcquire();
    b.onSuccess();
    assert.deepEqual(seen, ['closed->open', 'open->half_open', 'half_open->closed']);
  });

  it('releases a probe slot when the outcome is ignored', () => {
    const { b, clock } = breaker();
    for (let i = 0; i < 4; i++) b.onFailure();
    clock.advance(5_000);
    assert.ok(b.tryAcquire());
    b.onIgnored();
    assert.ok(b.tryAcquire());
  });
});
