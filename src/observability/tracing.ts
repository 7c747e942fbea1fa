import {
  type Attributes,
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';

export type { Span };

/** W3C trace context: `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`. */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

interface Shutdown {
  shutdown(): Promise<void>;
}

/**
 * Tracing with OpenTelemetry, off unless the standard `OTEL_*` variables name an exporter
 * endpoint. When off, nothing of the SDK is loaded and every call site checks `enabled` before
 * doing any work. Spans are passed explicitly (task → llm.call / tool.call / memory.search), so
 * no async context propagation is paid for, and no global tracer provider is installed in a host
 * application that embeds agentd.
 */
export class Tracing {
  readonly enabled: boolean;
  readonly #tracer: Tracer | undefined;
  readonly #provider: Shutdown | undefined;

  private constructor(tracer: Tracer | undefined, provider: Shutdown | undefined) {
    this.enabled = tracer !== undefined;
    this.#tracer = tracer;
    this.#provider = provider;
  }

  static readonly off = new Tracing(undefined, undefined);

  /**
   * Tracing as the environment configures it: on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
   * `OTEL_EXPORTER_OTLP_ENDPOINT` is set (OTLP over HTTP), unless `OTEL_SDK_DISABLED=true` or
   * `OTEL_TRACES_EXPORTER=none`.
   */
  static async fromEnv(env: NodeJS.ProcessEnv, version: string): Promise<Tracing> {
    if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return Tracing.off;
    const url =
      env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
      (env.OTEL_EXPORTER_OTLP_ENDPOINT === undefined
        ? undefined
        : `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`);
    if (url === undefined) return Tracing.off;
    const [{ BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] =
      await Promise.all([
        import('@opentelemetry/sdk-trace-base'),
        import('@opentelemetry/exporter-trace-otlp-http'),
        import('@opentelemetry/resources'),
      ]);
    const exporter = new OTLPTraceExporter({ url, headers: parseHeaders(env.OTEL_EXPORTER_OTLP_HEADERS) });
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({
        'service.name': env.OTEL_SERVICE_NAME ?? 'agentd',
        'service.version': version,
      }),
      spanProcessors: [
        new BatchSpanProcessor(exporter, {
          scheduledDelayMillis: Number(env.OTEL_BSP_SCHEDULE_DELAY ?? 1000),
        }),
      ],
    });
    return new Tracing(provider.getTracer('agentd', version), provider);
  }

  /** A task's root span, child of the client's `traceparent` when one came with the request. */
  startTask(attributes: Attributes, traceparent: string | undefined): Span | undefined {
    if (this.#tracer === undefined) return undefined;
    const parent = contextFrom(traceparent);
    return this.#tracer.startSpan('task', { kind: SpanKind.SERVER, attributes }, parent);
  }

  /** A span inside `parent` (`llm.call`, `tool.call`, `memory.search`). */
  startChild(
    parent: Span | undefined,
    name: string,
    attributes: Attributes,
    kind = SpanKind.INTERNAL,
  ): Span | undefined {
    if (this.#tracer === undefined || parent === undefined) return undefined;
    return this.#tracer.startSpan(name, { kind, attributes }, trace.setSpan(ROOT_CONTEXT, parent));
  }

  /** Flushes and stops the exporter. */
  async shutdown(): Promise<void> {
    await this.#provider?.shutdown();
  }
}

/** The `traceparent` header value that continues `span` (sent to providers). */
export function traceparentOf(span: Span | undefined): string | undefined {
  if (span === undefined) return undefined;
  const context = span.spanContext();
  return `00-${context.traceId}-${context.spanId}-${context.traceFlags.toString(16).padStart(2, '0')}`;
}

/** Ends a span with an outcome: OK, or ERROR with the error's code and message. */
export function endSpan(
  span: Span | undefined,
  attributes: Attributes,
  error?: { code: string; message: string } | null,
): void {
  if (span === undefined) return;
  span.setAttributes(attributes);
  if (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    span.setAttribute('error.code', error.code);
  } else span.setStatus({ code: SpanStatusCode.OK });
  span.end();
}

function contextFrom(traceparent: string | undefined): Context {
  const match = traceparent === undefined ? null : TRACEPARENT.exec(traceparent.trim());
  if (match === null || /^0+$/.test(match[1]!) || /^0+$/.test(match[2]!)) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: match[1]!,
    spanId: match[2]!,
    traceFlags: Number.parseInt(match[3]!, 16),
    isRemote: true,
  });
}

function parseHeaders(text: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of (text ?? '').split(',')) {
    const eq = pair.indexOf('=');
    if (eq > 0)
      headers[decodeURIComponent(pair.slice(0, eq).trim())] = decodeURIComponent(pair.slice(eq + 1).trim());
  }
  return headers;
}
