import { Metadata, status } from '@grpc/grpc-js';
import type { ErrorBody } from '../errors.js';

/** gRPC status for each agentd error code; anything else is INTERNAL. */
const STATUS_BY_CODE: Record<string, status> = {
  AGENTD_INVALID_REQUEST: status.INVALID_ARGUMENT,
  AGENTD_CONFIG_INVALID: status.INVALID_ARGUMENT,
  AGENTD_TOOL_ARGUMENTS_INVALID: status.INVALID_ARGUMENT,
  AGENTD_PROVIDER_REJECTED: status.INVALID_ARGUMENT,
  AGENTD_CONTEXT_LENGTH_EXCEEDED: status.INVALID_ARGUMENT,
  AGENTD_CONTENT_POLICY: status.INVALID_ARGUMENT,
  AGENTD_UNSUPPORTED_MEDIA_TYPE: status.INVALID_ARGUMENT,
  AGENTD_UNAUTHORIZED: status.UNAUTHENTICATED,
  AGENTD_FORBIDDEN: status.PERMISSION_DENIED,
  AGENTD_TOOL_FORBIDDEN: status.PERMISSION_DENIED,
  AGENTD_NOT_FOUND: status.NOT_FOUND,
  AGENTD_TOOL_NOT_FOUND: status.NOT_FOUND,
  AGENTD_CONFLICT: status.ALREADY_EXISTS,
  AGENTD_PAYLOAD_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  AGENTD_RATE_LIMITED: status.RESOURCE_EXHAUSTED,
  AGENTD_CONCURRENCY_LIMITED: status.RESOURCE_EXHAUSTED,
  AGENTD_BUDGET_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  AGENTD_QUEUE_FULL: status.RESOURCE_EXHAUSTED,
  AGENTD_PROVIDER_RATE_LIMITED: status.RESOURCE_EXHAUSTED,
  AGENTD_CIRCUIT_OPEN: status.UNAVAILABLE,
  AGENTD_SHUTTING_DOWN: status.UNAVAILABLE,
  AGENTD_OVERLOADED: status.UNAVAILABLE,
  AGENTD_PROVIDER_UNAVAILABLE: status.UNAVAILABLE,
  AGENTD_PROVIDER_STREAM_TRUNCATED: status.UNAVAILABLE,
  AGENTD_PROVIDER_PROTOCOL: status.UNAVAILABLE,
  AGENTD_SANDBOX_UNAVAILABLE: status.UNAVAILABLE,
  AGENTD_INTERRUPTED: status.UNAVAILABLE,
  AGENTD_TIMEOUT: status.DEADLINE_EXCEEDED,
  AGENTD_DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  AGENTD_PROVIDER_TIMEOUT: status.DEADLINE_EXCEEDED,
  AGENTD_TOOL_TIMEOUT: status.DEADLINE_EXCEEDED,
  AGENTD_CANCELLED: status.CANCELLED,
  AGENTD_MAX_ITERATIONS: status.FAILED_PRECONDITION,
};

/** The gRPC status of an agentd error code. */
export function grpcStatusOf(code: string): status {
  return STATUS_BY_CODE[code] ?? status.INTERNAL;
}

/** A gRPC error for an agentd error: status, message, and `agentd-code`/`retry-after-ms` trailers. */
export function grpcError(
  body: ErrorBody,
  taskId?: string,
): { code: status; details: string; metadata: Metadata } {
  const metadata = new Metadata();
  metadata.set('agentd-code', body.code);
  if (body.retry_after_ms !== undefined) metadata.set('retry-after-ms', String(body.retry_after_ms));
  if (taskId !== undefined) metadata.set('agentd-task-id', taskId);
  return { code: grpcStatusOf(body.code), details: body.message, metadata };
}
