/**
 * `npm run bench:admission`: the cost of one local admission decision, and of each primitive,
 * side by side in one run with rate-limiter-flexible (memory) and the cockatiel and opossum
 * circuit breakers doing the same work. Target: a full local decision (rate + concurrency +
 * budget + breaker) p50 ≤ 1 µs.
 */
import { ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';
import Opossum from 'opossum';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import {
  AdmissionController,
  CircuitBreaker,
  LocalLimits,
  type TaskTicket,
  TokenBucket,
  tenantIdentity,
} from '../../src/admission/index.js';
import { loadConfig } from '../../src/config/index.js';
import { describeMachine } from '../lib/machine.js';
import { measureMicro } from '../lib/micro.js';
import { table, updateDocs, writeResult } from '../lib/report.js';
import { round } from '../lib/stats.js';

const huge = 1e12;
const { config } = loadConfig({
  env: {},
  config: {
    limits: {
      tenants: { acme: { requests_per_second: huge, burst: huge, concurrency: 1e9, usd_per_day: huge } },
    },
  },
});
const admission = new AdmissionController(config, new LocalLimits());
const identity = tenantIdentity('acme');
const breaker = new CircuitBreaker('model');
const bucket = new TokenBucket(huge, huge, 0);
const limits = new LocalLimits();
const slotPlan = {
  rates: [],
  budgets: [],
  concurrency: [{ key: 'c', limit: 'tenant.concurrency', max: 1e9 }],
};
const budgetPlan = {
  rates: [],
  budgets: [
    { key: 'b', limit: 'tenant.usd_per_day', period: 'day' as const, max: huge, unit: 'usd' as const },
  ],
  concurrency: [],
};
const rlf = new RateLimiterMemory({ points: huge, duration: 1 });
const cockatiel = circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) });
const opossum = new Opossum(async () => 1, { timeout: false });
let now = 0;

const results = await measureMicro({
  'agentd: full decision (rate + concurrency + budget + breaker)': () => {
    const ticket = admission.admit(identity, 'assistant', 'h', 100) as TaskTicket;
    if (breaker.tryAcquire()) breaker.onSuccess(1);
    admission.release(ticket);
  },
  'agentd: token bucket take': () => bucket.take(1, now++),
  'agentd: concurrency slot take + release': () => {
    limits.admit(slotPlan, 'h', 0);
    limits.release(slotPlan.concurrency);
  },
  'agentd: budget check': () => limits.admit(budgetPlan, 'h', 0),
  'agentd: circuit breaker acquire + success': () => {
    if (breaker.tryAcquire()) breaker.onSuccess(1);
  },
  'agentd: full decision, awaited like a promise API': async () => {
    const ticket = (await admission.admit(identity, 'assistant', 'h', 100)) as TaskTicket;
    admission.release(ticket);
  },
  'rate-limiter-flexible (memory): consume': () => rlf.consume('acme'),
  'cockatiel: breaker execute': () => cockatiel.execute(() => 1),
  'opossum: breaker fire': () => opossum.fire(),
});

const rows = results.map((r) => [r.name, round(r.p50_ns), round(r.avg_ns), round(r.p99_ns)]);
const full = results[0]!;
const text = [
  table(['operation', 'p50 ns', 'avg ns', 'p99 ns'], rows),
  '',
  `A full local admission decision costs **${round(full.p50_ns)} ns** p50 (target ≤ 1,000 ns). rate-limiter-flexible, cockatiel and opossum expose promise-based APIs only, so they are also compared with agentd's decision awaited the same way. ${describeMachine().cpu}, Node ${process.version}. Command: \`npm run bench:admission\`.`,
].join('\n');
process.stdout.write(`${text}\n`);
writeResult('admission-micro', { machine: describeMachine(), results });
updateDocs('admission-micro', text);
