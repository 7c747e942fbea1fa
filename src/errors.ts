/**
 * Every failure agentd reports is declared here once, with a stable code, an HTTP status and
 * whether retrying can help. Callers throw these; the server and the CLI render them as data.
 */

/** The JSON shape of an error on the wire: `{ error: ErrorBody }`. */
export interface ErrorBody {
  code: string;
  message: string;
  retryable: boolean;
  retry_after_ms?: number;
  details?: Record<string, unknown>;
}

export interface ErrorOptions {
  retryAfterMs?: number;
  details?: Record<string, unknown>;
  cause?: unknown;
}

/** Base class of all agentd errors. */
export class AgentdError extends Error {
  readonly code: string;
  readonly status: number;
  readonly retryable: boolean;
  retryAfterMs: number | undefined;
  details: Record<string, unknown> | undefined;

  constructor(code: string, status: number, retryable: boolean, message: string, options?: ErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentdError';
    this.code = code;
    this.status = status;
    this.retryable = retryable;
    this.retryAfterMs = options?.retryAfterMs;
    this.details = options?.details;
  }

  /** The wire body, without the `{ error }` envelope. */
  toBody(): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.retryAfterMs !== undefined) body.retry_after_ms = this.retryAfterMs;
    if (this.details !== undefined) body.details = this.details;
    return body;
  }
}

/** A declared error: construct it to throw; its static `code` identifies it without `instanceof`. */
export interface ErrorClass {
  new (message: string, options?: ErrorOptions): AgentdError;
  readonly code: string;
}

const STATUS_BY_CODE = new Map<string, number>();

/** The HTTP status of an error code (500 for codes this build does not know). */
export function statusOf(code: string): number {
  return STATUS_BY_CODE.get(code) ?? 500;
}

function declare(code: string, status: number, retryable: boolean): ErrorClass {
  STATUS_BY_CODE.set(code, status);
  return class extends AgentdError {
    static readonly code = code;
    constructor(message: string, options?: ErrorOptions) {
      super(code, status, retryable, message, options);
    }
  };
}

// Client errors.
export const InvalidRequestError = declare('AGENTD_INVALID_REQUEST', 400, false);
export const UnauthorizedError = declare('AGENTD_UNAUTHORIZED', 401, false);
export const ForbiddenError = declare('AGENTD_FORBIDDEN', 403, false);
export const NotFoundError = declare('AGENTD_NOT_FOUND', 404, false);
export const ConflictError = declare('AGENTD_CONFLICT', 409, false);
export const PayloadTooLargeError = declare('AGENTD_PAYLOAD_TOO_LARGE', 413, false);
export const UnsupportedMediaTypeError = declare('AGENTD_UNSUPPORTED_MEDIA_TYPE', 415, false);
export const ConfigError = declare('AGENTD_CONFIG_INVALID', 400, false);

// Admission and capacity.
export const RateLimitedError = declare('AGENTD_RATE_LIMITED', 429, true);
export const ConcurrencyLimitedError = declare('AGENTD_CONCURRENCY_LIMITED', 429, true);
export const QueueFullError = declare('AGENTD_QUEUE_FULL', 503, true);
export const BudgetExhaustedError = declare('AGENTD_BUDGET_EXHAUSTED', 429, false);
export const CircuitOpenError = declare('AGENTD_CIRCUIT_OPEN', 503, true);
export const ShuttingDownError = declare('AGENTD_SHUTTING_DOWN', 503, true);
export const OverloadedError = declare('AGENTD_OVERLOADED', 503, true);
export const DashboardUnavailableError = declare('AGENTD_DASHBOARD_UNAVAILABLE', 503, false);
export const QueueUnavailableError = declare('AGENTD_QUEUE_UNAVAILABLE', 503, true);

// Task outcomes.
export const TimeoutError = declare('AGENTD_TIMEOUT', 504, true);
export const CancelledError = declare('AGENTD_CANCELLED', 499, false);
export const MaxIterationsError = declare('AGENTD_MAX_ITERATIONS', 422, false);
export const InterruptedError = declare('AGENTD_INTERRUPTED', 500, true);
export const DeadlineExceededError = declare('AGENTD_DEADLINE_EXCEEDED', 504, true);

// Provider faults.
export const ProviderRateLimitedError = declare('AGENTD_PROVIDER_RATE_LIMITED', 429, true);
export const ProviderUnavailableError = declare('AGENTD_PROVIDER_UNAVAILABLE', 502, true);
export const ProviderTimeoutError = declare('AGENTD_PROVIDER_TIMEOUT', 504, true);
export const ProviderStreamTruncatedError = declare('AGENTD_PROVIDER_STREAM_TRUNCATED', 502, true);
export const ProviderProtocolError = declare('AGENTD_PROVIDER_PROTOCOL', 502, true);
export const ProviderAuthError = declare('AGENTD_PROVIDER_AUTH', 502, false);
export const ProviderRejectedError = declare('AGENTD_PROVIDER_REJECTED', 400, false);
export const ContextLengthExceededError = declare('AGENTD_CONTEXT_LENGTH_EXCEEDED', 400, false);
export const ContentPolicyError = declare('AGENTD_CONTENT_POLICY', 400, false);

// Tools.
export const ToolForbiddenError = declare('AGENTD_TOOL_FORBIDDEN', 403, false);
export const ToolNotFoundError = declare('AGENTD_TOOL_NOT_FOUND', 404, false);
export const ToolArgumentsError = declare('AGENTD_TOOL_ARGUMENTS_INVALID', 400, false);
export const ToolTimeoutError = declare('AGENTD_TOOL_TIMEOUT', 504, true);
export const ToolFailedError = declare('AGENTD_TOOL_FAILED', 500, false);
export const ToolUnavailableError = declare('AGENTD_TOOL_UNAVAILABLE', 503, true);
export const SandboxUnavailableError = declare('AGENTD_SANDBOX_UNAVAILABLE', 503, true);

export const InternalError = declare('AGENTD_INTERNAL', 500, false);

/** Wraps anything thrown into an AgentdError without losing the original as `cause`. */
export function toAgentdError(err: unknown): AgentdError {
  if (err instanceof AgentdError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new InternalError(message, { cause: err });
}
