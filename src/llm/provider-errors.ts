import {
  type AgentdError,
  ContentPolicyError,
  ContextLengthExceededError,
  ProviderAuthError,
  ProviderRateLimitedError,
  ProviderRejectedError,
  ProviderStreamTruncatedError,
  ProviderTimeoutError,
  ProviderUnavailableError,
} from '../errors.js';

interface UpstreamErrorBody {
  message?: string;
  type?: string;
  code?: string | number | null;
}

/** Reads `Retry-After` (seconds or HTTP date) or `retry-after-ms` into milliseconds. */
export function parseRetryAfter(headers: Record<string, string | string[] | undefined>): number | undefined {
  const ms = headerValue(headers['retry-after-ms']);
  if (ms !== undefined) {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return Math.ceil(value);
  }
  const raw = headerValue(headers['retry-after']);
  if (raw === undefined) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
  const date = Date.parse(raw);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - Date.now());
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Extracts OpenAI's `{ error: { message, type, code } }` from an error body. */
export function extractError(text: string): UpstreamErrorBody {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === 'object') {
      const inner = (parsed as { error?: unknown }).error;
      if (inner !== null && typeof inner === 'object') return inner as UpstreamErrorBody;
      if (typeof inner === 'string') return { message: inner };
      const message = (parsed as { message?: unknown }).message;
      if (typeof message === 'string') return { message };
    }
  } catch {
    // Not JSON: the raw text is the message.
  }
  return { message: text.slice(0, 500) };
}

/** Maps an HTTP error reply from a provider onto the agentd error that drives the retry policy. */
export function classifyHttpError(
  provider: string,
  model: string,
  status: number,
  error: UpstreamErrorBody,
  retryAfterMs: number | undefined,
): AgentdError {
  const upstreamCode = error.code === undefined || error.code === null ? undefined : String(error.code);
  const reason = error.message ?? `HTTP ${status}`;
  const details: Record<string, unknown> = { provider, model, upstream_status: status };
  if (upstreamCode !== undefined) details.upstream_code = upstreamCode;
  if (error.type !== undefined) details.upstream_type = error.type;
  const text = `${upstreamCode ?? ''} ${error.type ?? ''} ${reason}`.toLowerCase();

  if (status === 429) {
    const opts = retryAfterMs === undefined ? { details } : { details, retryAfterMs };
    return new ProviderRateLimitedError(`${provider}/${model} is rate limited: ${reason}`, opts);
  }
  if (status >= 500 || status === 408 || status === 409) {
    return new ProviderUnavailableError(`${provider}/${model} failed with HTTP ${status}: ${reason}`, {
      details,
    });
  }
  if (status === 401 || status === 403) {
    return new ProviderAuthError(`${provider} refused the credentials (HTTP ${status}): ${reason}`, {
      details,
    });
  }
  if (text.includes('context_length') || text.includes('maximum context length') || status === 413) {
    return new ContextLengthExceededError(`${model}: ${reason}`, { details });
  }
  if (text.includes('content_policy') || text.includes('content_filter') || text.includes('safety')) {
    return new ContentPolicyError(`${model}: ${reason}`, { details });
  }
  return new ProviderRejectedError(`${provider}/${model} rejected the request (HTTP ${status}): ${reason}`, {
    details,
  });
}

/** Maps a transport failure (Http1Pool's or undici's error codes) onto an agentd error. */
export function classifyTransportError(
  provider: string,
  model: string,
  err: unknown,
  bodyStarted: boolean,
): AgentdError {
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  const details = { provider, model, transport_code: code };
  switch (code) {
    case 'HTTP1_CONNECT_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new ProviderTimeoutError(`${provider}: connect timeout`, {
        details: { ...details, phase: 'connect' },
      });
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new ProviderTimeoutError(`${provider}/${model}: no response headers within the limit`, {
        details: { ...details, phase: 'headers' },
      });
    case 'UND_ERR_BODY_TIMEOUT':
      return new ProviderTimeoutError(`${provider}/${model}: the stream went silent`, {
        details: { ...details, phase: 'idle' },
      });
  }
  if (bodyStarted) {
    return new ProviderStreamTruncatedError(
      `${provider}/${model}: the stream broke before it finished (${message})`,
      {
        details,
        cause: err,
      },
    );
  }
  return new ProviderUnavailableError(`${provider}/${model}: connection failed (${message})`, {
    details,
    cause: err,
  });
}
