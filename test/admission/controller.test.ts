import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AdmissionController,
  type Identity,
  LocalLimits,
  QueuedAdmission,
  ResourceGuard,
  TaskTicket,
  tenantIdentity,
} from '../../src/admission/index.js';
import { loadConfig } from '../../src/config/index.js';
import type { AgentdError } from '../../src/errors.js';

function controller(limits: Record<string, unknown>, clock = { now: 0 }) {
  const { config } = loadConfig({ env: {}, config: { limits } });
  const backend = new LocalLimits(
    () => clock.now,
    () => Date.UTC(2026, 10, 22, 12),
  );
  return { admission: new AdmissionController(config, backend), backend, clock };
}

const acme = tenantIdentity('acme');

function refusal(fn: () => unknown): AgentdError {
  try {
    fn();
  } catch (err) {
    return err as AgentdError;
  }
  assert.fail('expected a refusal');
}

describe('AdmissionController', () => {
  it('admits without limits at no cost, synchronously', () => {
    const { admission } = controller({});
    const ticket = admission.admit(acme, 'assistant', 't1', 100);
    assert.ok(ticket instanceof TaskTicket);
  });

  it('refuses past a tenant rate with 429, the limit named and a correct Retry-After', () => {
    const { admission, clock } = controller({ tenants: { acme: { requests_per_second: 2, burst: 2 } } });
    admission.admit(acme, 'a', 't1', 0);
    admission.admit(acme, 'a', 't2', 0);
    const error = refusal(() => admission.admit(acme, 'a', 't3', 0));
    assert.equal(error.code, 'AGENTD_RATE_LIMITED');
    assert.equal(error.status, 429);
    assert.equal(error.details?.limit, 'tenant.requests_per_second');
    assert.equal(error.retryAfterMs, 500);
    clock.now = 500;
    assert.ok(admission.admit(acme, 'a', 't4', 0), 'one token refilled after 500 ms');
    assert.ok(admission.admit(tenantIdentity('other'), 'a', 't5', 0), 'other tenants are unaffected');
  });

  it('leaves no trace when one of several limits refuses', () => {
    const { admission } = controller({
      global: { requests_per_second: 100 },
      tenants: { acme: { tokens_per_minute: 1000 } },
    });
    const error = refusal(() => admission.admit(acme, 'a', 't1', 5000));
    assert.equal(error.details?.limit, 'tenant.tokens_per_minute');
    assert.equal(error.retryAfterMs, undefined, 'can never fit: no retry hint');
    for (let i = 0; i < 100; i++) admission.admit(acme, 'a', `ok${i}`, 1);
    assert.equal(
      refusal(() => admission.admit(acme, 'a', 'x', 1)).details?.limit,
      'global.requests_per_second',
    );
  });

  it('queues past the concurrency limit up to max_queue, hands slots over on release, then refuses', async () => {
    const { admission } = controller({
      tenants: { acme: { concurrency: 1, max_queue: 1 } },
      queue_timeout_ms: 5000,
    });
    const first = admission.admit(acme, 'a', 't1', 0) as TaskTicket;
    const queued = admission.admit(acme, 'a', 't2', 0);
    assert.ok(queued instanceof QueuedAdmission);
    assert.equal(admission.queued(), 1);
    const full = await Promise.resolve()
      .then(() => admission.admit(acme, 'a', 't3', 0))
      .catch((err: AgentdError) => err);
    assert.equal((full as AgentdError).code, 'AGENTD_CONCURRENCY_LIMITED');
    assert.equal((full as AgentdError).details?.limit, 'tenant.concurrency');
    admission.release(first);
    const second = await queued.granted;
    assert.equal(second.holder, 't2');
    admission.release(second);
    admission.release(second);
    assert.ok(admission.admit(acme, 'a', 't4', 0) instanceof TaskTicket, 'release is idempotent');
  });

  it('gives up a queued task after the queue timeout and refunds its rate', async () => {
    const { admission } = controller({
      tenants: { acme: { concurrency: 1, requests_per_second: 2, burst: 2 } },
      queue_timeout_ms: 20,
    });
    admission.admit(acme, 'a', 't1', 0);
    const waiting = admission.admit(acme, 'a', 't2', 0) as QueuedAdmission;
    await assert.rejects(waiting.granted, { code: 'AGENTD_CONCURRENCY_LIMITED' });
    const again = admission.admit(acme, 'a', 't3', 0);
    assert.ok(again instanceof QueuedAdmission, 'the refunded request token was available again');
    void again.granted.catch(() => {});
  });

  it('refuses a spent daily budget until the day ends, and reports budgets spent by usage', () => {
    const { admission } = controller({ tenants: { acme: { usd_per_day: 1, tokens_per_month: 1000 } } });
    const ticket = admission.admit(acme, 'a', 't1', 0) as TaskTicket;
    assert.equal(admission.settle(ticket, 10, 0.4), undefined);
    assert.equal((admission.settle(ticket, 10, 0.7) as { limit: string }).limit, 'tenant.usd_per_day');
    const error = refusal(() => admission.admit(acme, 'a', 't2', 0));
    assert.equal(error.code, 'AGENTD_BUDGET_EXHAUSTED');
    assert.equal(error.details?.limit, 'tenant.usd_per_day');
    assert.equal(error.retryAfterMs, Date.UTC(2026, 10, 23) - Date.UTC(2026, 10, 22, 12));
  });

  it('applies an API key its own limits and agent allow-list', () => {
    const { admission } = controller({});
    const key: Identity = {
      tenantId: 'acme',
      userId: undefined,
      keyId: 'key_1',
      agents: new Set(['assistant']),
      limits: { requests_per_second: 1, burst: 1 },
    };
    assert.equal(refusal(() => admission.admit(key, 'admin', 't1', 0)).code, 'AGENTD_FORBIDDEN');
    admission.admit(key, 'assistant', 't2', 0);
    assert.equal(
      refusal(() => admission.admit(key, 'assistant', 't3', 0)).details?.limit,
      'key.requests_per_second',
    );
  });

  it('draws per-minute tokens before later calls and settles actual usage', () => {
    const { admission, clock } = controller({ tenants: { acme: { tokens_per_minute: 600 } } });
    const ticket = admission.admit(acme, 'a', 't1', 500) as TaskTicket;
    admission.settle(ticket, 300, 0);
    assert.equal(admission.reserveTokens(ticket, 300), 0, '200 refunded: 300 available');
    admission.settle(ticket, 400, 0);
    assert.equal(admission.reserveTokens(ticket, 100), 20_000, 'in debt by 100: 200 tokens at 10/s');
    clock.now = 20_000;
    assert.equal(admission.reserveTokens(ticket, 100), 0);
  });

  it('limits models and tools on their own scopes', () => {
    const { admission } = controller({
      models: { big: { requests_per_second: 1, burst: 1 } },
      tools: { http_fetch: { concurrency: 1 } },
    });
    assert.equal(admission.admitModel('big', 10), 0);
    assert.equal(admission.admitModel('big', 10), 1000);
    assert.equal(admission.admitModel('small', 10), 0, 'models without limits pass');
    const release = admission.admitTool('http_fetch', 'c1') as () => void;
    assert.equal(refusal(() => admission.admitTool('http_fetch', 'c2')).code, 'AGENTD_CONCURRENCY_LIMITED');
    release();
    (admission.admitTool('http_fetch', 'c3') as () => void)();
  });

  it('refuses new tasks with 503 while the resource guard says so', () => {
    const { config } = loadConfig({ env: {} });
    const guard = new ResourceGuard({
      maxHeapMb: 1,
      maxEventLoopLagMs: 1000,
      warnRatio: 0.8,
      refuseRatio: 0.95,
      checkIntervalMs: 60_000,
    });
    try {
      assert.equal(guard.check().state, 'warn', 'one check past the limit only warns');
      guard.check();
      assert.equal(guard.check().state, 'refuse', 'sustained pressure refuses');
      const admission = new AdmissionController(config, new LocalLimits(), { guard });
      const error = refusal(() => admission.admit(acme, 'a', 't1', 0));
      assert.equal(error.code, 'AGENTD_OVERLOADED');
      assert.equal(error.status, 503);
      assert.ok(error.retryAfterMs! > 0);
      assert.equal(error.details?.limit, 'resource');
    } finally {
      guard.close();
    }
  });
});
