import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorBody } from '../errors.js';
import {
  type AgentdError,
  InternalError,
  InvalidRequestError,
  NotFoundError,
  PayloadTooLargeError,
  statusOf,
  UnsupportedMediaTypeError,
} from '../errors.js';
import type { Logger } from '../observability/index.js';

export interface ValidationIssue {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Renders a Fastify validation failure as a message naming the field. */
function describeValidation(context: string, issue: ValidationIssue): { field: string; message: string } {
  const path = issue.instancePath.slice(1).replace(/\//g, '.');
  const base = path === '' ? context : `${context}.${path}`;
  if (issue.keyword === 'required') {
    const field = `${base}.${String(issue.params.missingProperty)}`;
    return { field, message: `${field} is required` };
  }
  if (issue.keyword === 'additionalProperties') {
    const field = `${base}.${String(issue.params.additionalProperty)}`;
    return { field, message: `${field} is not a known field` };
  }
  return { field: base, message: `${base} ${issue.message ?? 'is invalid'}` };
}

/** The error for a body that failed its schema: the first issue, naming the field. */
export function validationFailure(context: string, issues: readonly ValidationIssue[]): AgentdError {
  const { field, message } = describeValidation(context, issues[0]!);
  return new InvalidRequestError(message, { details: { field } });
}

/** Maps anything a route throws to agentd's error envelope and status. */
export function toHttpError(err: FastifyError | AgentdError | Error): AgentdError {
  if ('retryable' in err && typeof (err as AgentdError).toBody === 'function') return err as AgentdError;
  const fastifyError = err as FastifyError & { validation?: ValidationIssue[]; validationContext?: string };
  if (fastifyError.validation !== undefined && fastifyError.validation.length > 0)
    return validationFailure(fastifyError.validationContext ?? 'body', fastifyError.validation);
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return bodyTooLarge();
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaTypeError('send the body as application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new InvalidRequestError('the JSON body is empty');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new InvalidRequestError(`the body is not valid JSON: ${err.message}`);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new InvalidRequestError('the content-length header does not match the body');
  }
  if (err instanceof SyntaxError)
    return new InvalidRequestError(`the body is not valid JSON: ${err.message}`);
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) return new InvalidRequestError(err.message);
  return new InternalError('internal error', { cause: err });
}

/** A request body over `server.body_limit_bytes`. */
export function bodyTooLarge(): AgentdError {
  return new PayloadTooLargeError('the request body is larger than server.body_limit_bytes');
}

/** A `Retry-After` header for a retry hint in milliseconds (whole seconds, at least 1). */
export function retryAfterSeconds(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : String(Math.max(1, Math.ceil(ms / 1000)));
}

/** Sends an error envelope with `Retry-After` when the error carries a retry hint. */
export function sendError(
  reply: FastifyReply,
  error: AgentdError,
  extra?: Record<string, unknown>,
): FastifyReply {
  if (error.retryAfterMs !== undefined) reply.header('retry-after', retryAfterSeconds(error.retryAfterMs));
  return reply.code(error.status).send({ error: error.toBody(), ...extra });
}

/** The status a stored error body maps to. */
export function statusOfBody(body: ErrorBody): number {
  return statusOf(body.code);
}

export function installErrorHandlers(
  app: {
    setErrorHandler: (fn: (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => void) => unknown;
    setNotFoundHandler: (fn: (req: FastifyRequest, reply: FastifyReply) => void) => unknown;
  },
  log: Logger,
): void {
  app.setErrorHandler((err, request, reply) => {
    const error = toHttpError(err);
    if (error.status >= 500 && error.code === InternalError.code) {
      log.error({ err, url: request.url, method: request.method }, 'request failed');
    }
    sendError(reply, error);
  });
  app.setNotFoundHandler((request, reply) => {
    sendError(reply, new NotFoundError(`no route ${request.method} ${request.url.split('?')[0]}`));
  });
}
