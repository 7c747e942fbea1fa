export {
  type BreakerListener,
  type BreakerOptions,
  type BreakerState,
  CircuitBreaker,
  DEFAULT_BREAKER,
} from './breaker.js';
