export type {
  AdmitOutcome,
  AdmitPlan,
  BudgetCheck,
  ConcurrencyClaim,
  LimitBackend,
  RateDraw,
} from './backend.js';
export {
  type BreakerListener,
  type BreakerOptions,
  type BreakerState,
  breakerOptions,
  CircuitBreaker,
  DEFAULT_BREAKER,
} from './breaker.js';
export { BudgetLedger, type BudgetPeriod, periodOf } from './budget.js';
export {
  AdmissionController,
  type AdmissionOptions,
  type AdmissionPlan,
  type Admitted,
  QueuedAdmission,
  resolvePlan,
  TaskTicket,
} from './controller.js';
export { DEFAULT_TENANT, type Identity, OPEN_IDENTITY, tenantIdentity } from './identity.js';
export { ApiKeys, hashKey, type NewKey } from './keys.js';
export { LocalLimits } from './local-limits.js';
export { RedisLimits, type RedisLimitsOptions } from './redis-limits.js';
export {
  ResourceGuard,
  type ResourceGuardOptions,
  type ResourceSnapshot,
  type ResourceState,
} from './resource-guard.js';
export { TokenBucket } from './token-bucket.js';
