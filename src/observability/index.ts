export { createLogger, type Logger, type LoggerOptions, REDACT_PATHS } from './logger.js';
export {
  AgentdMetrics,
  type AgentSeries,
  type MetricsOptions,
  type ModelSeries,
  type ToolSeries,
} from './metrics.js';
export { CounterFamily, CounterSeries, GaugeFamily, HistogramFamily, HistogramSeries } from './series.js';
export { endSpan, type Span, Tracing, traceparentOf } from './tracing.js';
