import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SandboxAdmission } from '../../src/sandbox/index.js';

const options = {
  maxConcurrentPerTenant: 2,
  breaker: { windowMs: 60_000, minRequests: 3, failureRate: 0.5, openMs: 30_000 },
};

describe('sandbox admission', () => {
  it('limits concurrent runs per tenant, not across tenants, and frees a slot on release', () => {
    const admission = new SandboxAdmission(options);
    const a1 = admission.admit('a', 'python');
    admission.admit('a', 'javascript');
    assert.throws(
      () => admission.admit('a', 'python'),
      (err: { code: string; status: number; retryAfterMs: number }) => {
        assert.equal(err.code, 'AGENTD_CONCURRENCY_LIMITED');
        assert.equal(err.status, 429);
        assert.ok(err.retryAfterMs > 0);
        return true;
      },
    );
    admission.admit('b', 'python'); // another tenant is not affected
    a1.release('ok');
    a1.release('ok'); // a second release changes nothing
    assert.equal(admission.running('a'), 1);
    admission.admit('a', 'python');
  });

  it("opens a tenant's breaker for a language after repeated crashes, leaving others alone", () => {
    const admission = new SandboxAdmission(options);
    admission.admit('a', 'python').release('ok');
    admission.admit('a', 'python').release('crashed');
    admission.admit('a', 'python').release('crashed');
    assert.throws(() => admission.admit('a', 'python'), { code: 'AGENTD_CIRCUIT_OPEN' });
    admission.admit('a', 'javascript').release('ok');
    admission.admit('b', 'python').release('ok');
  });

  it('does not count refusals or timeouts of the program as crashes', () => {
    const admission = new SandboxAdmission(options);
    for (let i = 0; i < 10; i++) admission.admit('a', 'python').release(i % 2 === 0 ? 'ignored' : 'ok');
    admission.admit('a', 'python').release('ok');
  });
});
