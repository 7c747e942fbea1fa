/**
 * A mock scenario is read from the model name, so that any client (an agent's config, the
 * `openai` SDK, curl) can select behaviour per request without extra headers:
 *
 *   mock-small?fault=429&retry_after=1&times=2
 *   mock?ttft_ms=200&interval_ms=100&tokens=300
 *   mock?call=http_fetch&args={"url":"https://example.com"}
 *
 * The part before `?` is the model name reported back; the query selects the scenario.
 */

export const FAULTS = [
  /** HTTP 429, with `Retry-After` when `retry_after`/`retry_after_ms` is given. */
  '429',
  '500',
  '502',
  '503',
  /** Socket destroyed before any response headers. */
  'reset',
  /** Never answers: no headers, no body. */
  'hang',
  /** Headers and some tokens, then silence with the connection open. */
  'stall',
  /** Some tokens, then a clean end of body without a finish reason. */
  'cut',
  /** Some tokens, then the socket is destroyed. */
  'cut_reset',
  /** A malformed chunk among the good ones. */
  'malformed',
  /** Finish reason and usage, then end of body without `[DONE]`. */
  'no_done',
  /** Finish reason and usage, then the connection stays open without `[DONE]`. */
  'no_done_hang',
  /** HTTP 400 `context_length_exceeded`. */
  'context_length',
  /** HTTP 400 `content_policy_violation`. */
  'content_policy',
  /** An `{"error":…}` payload in the middle of the stream. */
  'error_event',
] as const;

export type Fault = (typeof FAULTS)[number];

export interface Scenario {
  /** The model name without the query. */
  model: string;
  fault: Fault | undefined;
  /** The fault applies to the first `times` requests with this exact model string. */
  times: number;
  retryAfterMs: number | undefined;
  /** Delay before response headers. */
  latencyMs: number;
  /** Delay from headers to the first token. */
  ttftMs: number;
  /** Delay between tokens (0 = as fast as possible). */
  intervalMs: number;
  /** Tokens in a generated reply. */
  tokens: number;
  /** Tokens sent before `stall`, `cut`, `cut_reset`, `malformed` and `error_event` act. */
  after: number;
  /** A fixed reply text. */
  reply: string | undefined;
  /** A tool to call on the first turn, and its JSON arguments. */
  call: string | undefined;
  args: string | undefined;
}

/** Defaults applied to every request (set by `agentd mock-llm` flags or in tests). */
export interface ScenarioDefaults {
  latencyMs: number;
  ttftMs: number;
  intervalMs: number;
  tokens: number;
}

export const DEFAULT_SCENARIO: ScenarioDefaults = { latencyMs: 0, ttftMs: 0, intervalMs: 0, tokens: 12 };

/** Parses the scenario a model string selects. */
export function parseScenario(modelString: string, defaults: ScenarioDefaults): Scenario {
  const q = modelString.indexOf('?');
  const params = new URLSearchParams(q === -1 ? '' : modelString.slice(q + 1));
  const fault = params.get('fault');
  return {
    model: q === -1 ? modelString : modelString.slice(0, q),
    fault: fault !== null && (FAULTS as readonly string[]).includes(fault) ? (fault as Fault) : undefined,
    times: numberParam(params, 'times', Number.POSITIVE_INFINITY),
    retryAfterMs: params.has('retry_after_ms')
      ? numberParam(params, 'retry_after_ms', 0)
      : params.has('retry_after')
        ? numberParam(params, 'retry_after', 0) * 1000
        : undefined,
    latencyMs: numberParam(params, 'latency_ms', defaults.latencyMs),
    ttftMs: numberParam(params, 'ttft_ms', defaults.ttftMs),
    intervalMs: numberParam(params, 'interval_ms', defaults.intervalMs),
    tokens: numberParam(params, 'tokens', defaults.tokens),
    after: numberParam(params, 'after', 3),
    reply: params.get('reply') ?? undefined,
    call: params.get('call') ?? undefined,
    args: params.get('args') ?? undefined,
  };
}

function numberParam(params: URLSearchParams, name: string, fallback: number): number {
  const raw = params.get(name);
  if (raw === null) return fallback;
  const value = Number(raw);
  return Number.isFinite(value) && value >= 0 ? value : fallback;
}
