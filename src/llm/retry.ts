import {
  type AgentdError,
  ContentPolicyError,
  ContextLengthExceededError,
  ProviderAuthError,
  ProviderProtocolError,
  ProviderRateLimitedError,
  ProviderRejectedError,
  ProviderStreamTruncatedError,
  ProviderTimeoutError,
  ProviderUnavailableError,
} from '../errors.js';

export interface RetryPolicy {
  /** Attempts per model before failing over (1 = no retry). */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A `Retry-After` longer than this fails over at once instead of waiting. */
  maxRetryAfterMs: number;
}

/** What to do after a failed attempt. */
export type RetryDecision =
  | { kind: 'retry'; delayMs: number }
  | { kind: 'next_model' }
  | { kind: 'context_fallback' }
  | { kind: 'fail' };

/** Exponential backoff with "equal jitter": half fixed, half random, so retries never align. */
export function backoffDelay(
  policy: RetryPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Decides the next step after attempt number `attempt` (1-based) failed with `error`. */
export function decideRetry(policy: RetryPolicy, error: AgentdError, attempt: number): RetryDecision {
  const attemptsLeft = attempt < policy.maxAttempts;
  switch (error.code) {
    case ProviderRateLimitedError.code: {
      const wait = error.retryAfterMs;
      if (wait === undefined) {
        return attemptsLeft
          ? { kind: 'retry', delayMs: backoffDelay(policy, attempt) }
          : { kind: 'next_model' };
      }
      if (wait > policy.maxRetryAfterMs || !attemptsLeft) return { kind: 'next_model' };
      return { kind: 'retry', delayMs: wait };
    }
    case ContextLengthExceededError.code:
      return { kind: 'context_fallback' };
    case ContentPolicyError.code:
      return { kind: 'fail' };
    // Bad credentials or an unknown model on one provider may work on the next one.
    case ProviderAuthError.code:
    case ProviderRejectedError.code:
      return { kind: 'next_model' };
  }
  if (isTransient(error)) {
    return attemptsLeft ? { kind: 'retry', delayMs: backoffDelay(policy, attempt) } : { kind: 'next_model' };
  }
  return { kind: 'fail' };
}

const TRANSIENT = new Set([
  ProviderUnavailableError.code,
  ProviderTimeoutError.code,
  ProviderStreamTruncatedError.code,
  ProviderProtocolError.code,
]);

/** Faults of the provider itself, which a retry may cure. */
export function isTransient(error: AgentdError): boolean {
  return TRANSIENT.has(error.code);
}

/** Failures that count against a model's circuit breaker (the provider's fault, not the request's). */
export function countsAgainstBreaker(error: AgentdError): boolean {
  return TRANSIENT.has(error.code) || error.code === ProviderRateLimitedError.code;
}
