import client from 'prom-client';
import {
  CounterFamily,
  type CounterSeries,
  GaugeFamily,
  HistogramFamily,
  type HistogramSeries,
} from './series.js';

/** Seconds buckets from half a millisecond to five minutes. */
const SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
];
/** Overhead is measured in microseconds to milliseconds. */
const OVERHEAD_SECONDS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1,
];

export interface MetricsOptions {
  /** Label cost by tenant (off by default: tenants can be many). */
  tenantLabels: boolean;
}

/** The series one agent's tasks record into. */
export interface AgentSeries {
  finished: Record<'succeeded' | 'failed' | 'cancelled', CounterSeries>;
  duration: HistogramSeries;
}

/** The series one model records into. */
export interface ModelSeries {
  ok: CounterSeries;
  duration: HistogramSeries;
  ttft: HistogramSeries;
  inputTokens: CounterSeries;
  outputTokens: CounterSeries;
  provider: string;
  model: string;
}

/** The series one tool records into. */
export interface ToolSeries {
  ok: CounterSeries;
  duration: HistogramSeries;
  tool: string;
}

/**
 * Every metric agentd exports (Prometheus names), plus Node's process metrics from prom-client.
 * Hot paths hold pre-bound series (see series.ts) and record with a field update.
 */
export class AgentdMetrics {
  readonly tasks = new CounterFamily('agentd_tasks_total', 'Tasks finished, by agent and status', [
    'agent',
    'status',
  ]);
  readonly taskDuration = new HistogramFamily(
    'agentd_task_duration_seconds',
    'Task duration from start to end',
    ['agent'],
    SECONDS,
  );
  readonly overhead = new HistogramFamily(
    'agentd_overhead_seconds',
    'Task time not spent waiting on providers or tools',
    [],
    OVERHEAD_SECONDS,
  );
  readonly llmRequests = new CounterFamily(
    'agentd_llm_requests_total',
    'Model calls (each attempt), by outcome',
    ['provider', 'model', 'status'],
  );
  readonly llmDuration = new HistogramFamily(
    'agentd_llm_request_duration_seconds',
    'Model call duration (each attempt)',
    ['provider', 'model'],
    SECONDS,
  );
  readonly ttft = new HistogramFamily(
    'agentd_llm_time_to_first_token_seconds',
    'Time from request to first streamed token',
    ['provider', 'model'],
    SECONDS,
  );
  readonly tokens = new CounterFamily('agentd_llm_tokens_total', 'LLM tokens, by model and direction', [
    'model',
    'direction',
  ]);
  readonly cost = new CounterFamily('agentd_cost_usd_total', 'Cost in USD, by tenant and model', [
    'tenant',
    'model',
  ]);
  readonly toolCalls = new CounterFamily('agentd_tool_calls_total', 'Tool calls, by outcome', [
    'tool',
    'status',
  ]);
  readonly toolDuration = new HistogramFamily(
    'agentd_tool_duration_seconds',
    'Tool call duration',
    ['tool'],
    SECONDS,
  );
  readonly rejections = new CounterFamily(
    'agentd_admission_rejections_total',
    'Requests refused by admission, by the limit hit',
    ['reason'],
  );
  readonly cacheRequests = new CounterFamily(
    'agentd_cache_requests_total',
    'Cache lookups, by cache, level and result',
    ['cache', 'level', 'result'],
  );
  readonly memorySearch = new HistogramFamily(
    'agentd_memory_search_duration_seconds',
    'Memory search duration, by mode',
    ['mode'],
    SECONDS,
  );
  /** The overhead histogram has no labels: one series for everything. */
  readonly overheadAll = this.overhead.with();
  readonly #options: MetricsOptions;
  readonly #gauges: GaugeFamily[] = [];
  readonly #agents = new Map<string, AgentSeries>();
  readonly #tools = new Map<string, ToolSeries>();
  readonly #costs = new Map<string, Map<string, CounterSeries>>();
  #registry: client.Registry | undefined;

  constructor(options: MetricsOptions = { tenantLabels: false }) {
    this.#options = options;
  }

  /** Adds a gauge read at scrape time (active tasks, queue depth, circuit states…). */
  gauge(
    name: string,
    help: string,
    labelNames: readonly string[],
    read: () => Iterable<[readonly string[], number]>,
  ): void {
    this.#gauges.push(new GaugeFamily(name, help, labelNames, read));
  }

  agent(name: string): AgentSeries {
    let series = this.#agents.get(name);
    if (series === undefined) {
      series = {
        finished: {
          succeeded: this.tasks.with(name, 'succeeded'),
          failed: this.tasks.with(name, 'failed'),
          cancelled: this.tasks.with(name, 'cancelled'),
        },
        duration: this.taskDuration.with(name),
      };
      this.#agents.set(name, series);
    }
    return series;
  }

  model(provider: string, model: string): ModelSeries {
    return {
      ok: this.llmRequests.with(provider, model, 'ok'),
      duration: this.llmDuration.with(provider, model),
      ttft: this.ttft.with(provider, model),
      inputTokens: this.tokens.with(model, 'input'),
      outputTokens: this.tokens.with(model, 'output'),
      provider,
      model,
    };
  }

  tool(name: string): ToolSeries {
    let series = this.#tools.get(name);
    if (series === undefined) {
      series = { ok: this.toolCalls.with(name, 'ok'), duration: this.toolDuration.with(name), tool: name };
      this.#tools.set(name, series);
    }
    return series;
  }

  /**
   * The cost series of a tenant's calls to a model, looked up without building a label key
   * (once per model call on the task path).
   */
  costSeries(tenant: string, model: string): CounterSeries {
    const label = this.tenantLabel(tenant);
    let byModel = this.#costs.get(label);
    if (byModel === undefined) {
      byModel = new Map();
      this.#costs.set(label, byModel);
    }
    let series = byModel.get(model);
    if (series === undefined) {
      series = this.cost.with(label, model);
      byModel.set(model, series);
    }
    return series;
  }

  /** The tenant label value: the tenant when tenant labels are on, else `*`. */
  tenantLabel(tenant: string): string {
    return this.#options.tenantLabels ? tenant : '*';
  }

  /** The Prometheus text exposition: agentd's metrics, then Node's process metrics. */
  async render(): Promise<string> {
    if (this.#registry === undefined) {
      this.#registry = new client.Registry();
      client.collectDefaultMetrics({ register: this.#registry });
    }
    const out: string[] = [];
    for (const family of [
      this.tasks,
      this.taskDuration,
      this.overhead,
      this.llmRequests,
      this.llmDuration,
      this.ttft,
      this.tokens,
      this.cost,
      this.toolCalls,
      this.toolDuration,
      this.rejections,
      this.cacheRequests,
      this.memorySearch,
      ...this.#gauges,
    ]) {
      family.render(out);
    }
    return `${out.join('\n')}\n${await this.#registry.metrics()}`;
  }

  /** The content type of `render()`. */
  get contentType(): string {
    return client.Registry.PROMETHEUS_CONTENT_TYPE;
  }
}
