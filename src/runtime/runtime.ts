import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import {
  AdmissionController,
  type Admitted,
  ApiKeys,
  breakerOptions,
  DEFAULT_TENANT,
  type Identity,
  LocalLimits,
  QueuedAdmission,
  RedisLimits,
  ResourceGuard,
  type TaskTicket,
  tenantIdentity,
} from '../admission/index.js';
import {
  Agent,
  type AgentOptions,
  completionData,
  type LoopDeps,
  runTask,
  type Subscription,
  Task,
  type TaskEventListener,
} from '../agent/index.js';
import { type CachedReply, MultiLevelCache, ResponseCache } from '../cache/index.js';
import { type Config, loadConfig, MODES, TIERS } from '../config/index.js';
import {
  BudgetExhaustedError,
  CancelledError,
  ConfigError,
  DeadlineExceededError,
  InterruptedError,
  InvalidRequestError,
  NotFoundError,
  PayloadTooLargeError,
  QueueFullError,
  ShuttingDownError,
  ToolForbiddenError,
  toAgentdError,
} from '../errors.js';
import { uuidv7 } from '../lib/ids.js';
import { estimateTokens } from '../lib/tokens.js';
import { ModelRouter, type StartedProviders, startProviders } from '../llm/index.js';
import {
  createLongTermMemory,
  createMemoryTools,
  type LongTermMemory,
  type SearchObserver,
} from '../memory/index.js';
import { AgentdMetrics, createLogger, endSpan, type Logger, Tracing } from '../observability/index.js';
import { AdaptiveConcurrency, FairScheduler } from '../queue/index.js';
import { createSandboxTools, type Language, Sandbox, sandboxLanguage } from '../sandbox/index.js';
import {
  type DeleteBatch,
  openStore,
  type Page,
  type SessionRecord,
  type Store,
  type StoredMessage,
  Sweeper,
  type TaskOptions,
  type TaskQuery,
  type TaskRecord,
  TERMINAL_STATUSES,
} from '../store/index.js';
import {
  calculator,
  connectMcpServers,
  createHttpFetch,
  currentTime,
  type ToolCallOutcome,
  type ToolDefinition,
  ToolExecutor,
  ToolRegistry,
} from '../tools/index.js';
import { Cluster } from './cluster.js';
import { executeTool, type ToolExecutionRequest } from './tool-execution.js';
import { VERSION } from './version.js';

export interface RuntimeOptions {
  /** Configuration merged over the file (same keys as `agentd.yaml`). */
  config?: Record<string, unknown>;
  /** A config file; defaults to `AGENTD_CONFIG` or `agentd.yaml|yml|json` in the working directory. */
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Agents declared in code (in addition to the configuration's). */
  agents?: AgentOptions[];
  /** Tools declared in code. */
  tools?: ToolDefinition<never, unknown>[];
  logger?: Logger;
  /** A storage adapter; defaults to SQLite at `storage.path`. */
  store?: Store;
  /**
   * Re-run tasks a previous process left unfinished (default true). One-shot tools such as
   * `agentd run` turn it off so they never pick up a server's tasks from a shared file.
   */
  recover?: boolean;
}

/** A request to run an agent. Only `agent` and `input` are required. */
export interface SubmitRequest {
  agent: string;
  input: string;
  tenantId?: string | undefined;
  userId?: string | undefined;
  sessionId?: string | undefined;
  idempotencyKey?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
  model?: string | undefined;
  tier?: string | undefined;
  mode?: string | undefined;
  /** Narrows the agent's tools for this task. */
  tools?: string[] | undefined;
  priority?: number | undefined;
  timeoutMs?: number | undefined;
  /** Resolve only once the task is durable (the acknowledgement of the async API). */
  durable?: boolean | undefined;
  /** Who asks: tenant, user, API key (its agent allow-list and limits). Overrides tenantId/userId. */
  identity?: Identity | undefined;
  /** W3C trace context of the caller; the task's span continues it. */
  traceparent?: string | undefined;
  /** Reuse cached model replies for this task (as the agent's `cache` does). */
  cache?: boolean | undefined;
  /** The task must start within this many milliseconds, or it fails with AGENTD_DEADLINE_EXCEEDED. */
  deadlineMs?: number | undefined;
}

export interface Submission {
  task: Task;
  /** False when an idempotency key matched an existing task. */
  created: boolean;
}

/** A task's events: buffered backlog plus live delivery, or the persisted tail of a finished task. */
export interface EventStream {
  /** `attempt` is set on events read from a shared stream (each carries its run). */
  backlog: { seq: number; type: string; data: unknown; at: number; attempt?: number }[];
  gap: boolean;
  /** True when no live events will follow the backlog. */
  finished: boolean;
  attempt: number;
  unsubscribe(): void;
}

export interface HealthReport {
  status: 'ok' | 'draining';
  version: string;
  uptime_seconds: number;
  active_tasks: number;
  queued_tasks: number;
  total_tasks: number;
  store: string;
  provider: string;
}

export { DEFAULT_TENANT };

/** Output tokens assumed for a call whose agent sets no `max_output_tokens` (token-rate estimates). */
const DEFAULT_OUTPUT_ESTIMATE = 256;
/** How long a finished task stays in memory (the newest `tasks.recent_limit`) for reads and SSE replay. */
const RECENT_TTL_MS = 10 * 60_000;

/** Builds the admission layer: shared limits on Redis when configured, else in this process. */
function createAdmission(config: Config, log: Logger): AdmissionController {
  const resource = config.limits.resource;
  const guard = new ResourceGuard({
    maxHeapMb: resource.max_heap_mb,
    maxEventLoopLagMs: resource.max_event_loop_lag_ms,
    warnRatio: resource.warn_ratio,
    refuseRatio: resource.refuse_ratio,
    checkIntervalMs: resource.check_interval_ms,
    sustainChecks: resource.sustain_checks,
  });
  guard.onStateChange((from, to, snapshot) => {
    const level = to === 'ok' ? 'info' : to === 'warn' ? 'warn' : 'error';
    log[level]({ from, to, ...snapshot }, `resource guard: ${to}`);
  });
  const local = new LocalLimits();
  const url = config.redis.url;
  if (url === undefined) return new AdmissionController(config, local, { guard });
  const failMode = config.limits.redis_fail_mode;
  const backend = new RedisLimits({
    url,
    keyPrefix: config.redis.key_prefix,
    failMode,
    fallback: local,
    onTransition: (available, error) => {
      if (available) log.info('shared limits: Redis reachable, limits are shared by every process');
      else
        log.error(
          { err: error?.message, fail_mode: failMode },
          `shared limits: Redis unreachable, failing ${failMode}`,
        );
    },
  });
  return new AdmissionController(config, backend, { guard });
}

/**
 * The composition root: configuration, providers, router, tools, store and scheduler wired
 * together. The server, the CLI and library users all drive agentd through this class.
 */
export class Runtime {
  readonly config: Config;
  readonly log: Logger;
  readonly store: Store;
  readonly router: ModelRouter;
  readonly registry: ToolRegistry;
  /** Runs `run_javascript` and `run_python` (pools start on first use, or at startup). */
  readonly sandbox: Sandbox;
  readonly providerSource: string;
  readonly admission: AdmissionController;
  readonly keys: ApiKeys;
  readonly metrics: AgentdMetrics;
  readonly tracing: Tracing;
  /** Cached model replies and tool results (undefined when `cache.enabled` is false). */
  readonly responses: ResponseCache | undefined;
  readonly #cacheRedis: Redis[] = [];
  readonly #providers: StartedProviders;
  readonly #agents = new Map<string, Agent>();
  readonly #active = new Map<string, Task>();
  /**
   * Recently finished tasks, for reads and SSE replay without the store (never past their
   * retention); undefined when `tasks.recent_limit` is 0.
   */
  readonly #recent: LRUCache<string, Task> | undefined;
  readonly #idempotency = new Map<string, Task>();
  readonly #scheduler: FairScheduler<Task>;
  readonly #adaptive: AdaptiveConcurrency | undefined;
  readonly #executor: ToolExecutor;
  /** Set when `distributed.enabled`: the shared queue, event streams and signals. */
  #cluster: Cluster | undefined;
  readonly #startedAt = Date.now();
  #memory: LongTermMemory | undefined;
  #deps: LoopDeps | undefined;
  /** Deletes idle sessions (set when `sessions.idle_ttl_ms` is). */
  #sessionSweeper: Sweeper | undefined;
  /** Deletes finished tasks past `tasks.retention_ms` (set when it is). */
  #taskSweeper: Sweeper | undefined;
  /** Disconnects the agents' MCP servers. */
  #closeMcp: (() => Promise<void>) | undefined;
  #finishedTasks = 0;
  /** The last unawaited insert whose failure is logged (see `submit`). */
  #watchedInsert: Promise<void> | undefined;
  #draining = false;
  #closed = false;

  private constructor(
    config: Config,
    providerSource: string,
    log: Logger,
    store: Store,
    providers: StartedProviders,
    registry: ToolRegistry,
    admission: AdmissionController,
    tracing: Tracing,
    sandbox: Sandbox,
  ) {
    this.config = config;
    this.#recent =
      config.tasks.recent_limit === 0
        ? undefined
        : new LRUCache({
            max: config.tasks.recent_limit,
            ttl: Math.min(RECENT_TTL_MS, config.tasks.retention_ms ?? RECENT_TTL_MS),
          });
    this.admission = admission;
    this.tracing = tracing;
    this.metrics = new AgentdMetrics({ tenantLabels: config.observability.metrics.tenant_labels });
    this.keys = new ApiKeys(store, config);
    this.providerSource = providerSource;
    this.log = log;
    this.store = store;
    this.#providers = providers;
    this.registry = registry;
    this.sandbox = sandbox;
    this.router = new ModelRouter(config, providers.providers, this.metrics);
    const caches = this.#createCaches();
    this.responses = caches?.responses;
    this.#executor = new ToolExecutor(registry, {
      breaker: breakerOptions(config.tools.breaker),
      gate: admission,
      metrics: this.metrics,
      results: caches?.results,
      ttls: config.tools.cache,
    });
    this.#registerGauges();
    const models = config.limits.models;
    this.router.setGate({
      limits: (model) => models[model] !== undefined,
      admit: (model, estimate) => admission.admitModel(model, estimate),
      settle: (model, estimate, tokens) => admission.settleModel(model, estimate, tokens),
    });
    const limits = config.limits;
    this.#scheduler = new FairScheduler<Task>(
      {
        maxConcurrency: config.tasks.max_concurrency,
        maxQueue: config.tasks.max_queue,
        weight: (tenant) => limits.tenants[tenant]?.weight ?? limits.default_tenant?.weight ?? 1,
      },
      {
        tenant: (task) => task.record.tenant_id,
        priority: (task) => task.record.options.priority ?? 0,
        deadline: (task) => task.record.options.deadline_at,
      },
      (task) => this.#execute(task),
      (task) => this.#missedDeadline(task),
    );
    const adaptive = config.tasks.adaptive_concurrency;
    this.#adaptive = adaptive.enabled
      ? new AdaptiveConcurrency(this.#scheduler, {
          targetLagMs: adaptive.target_lag_ms,
          minConcurrency: Math.min(adaptive.min_concurrency, config.tasks.max_concurrency),
          maxConcurrency: config.tasks.max_concurrency,
          intervalMs: adaptive.interval_ms,
        })
      : undefined;
  }

  /** Loads configuration, starts providers and storage, and recovers unfinished tasks. */
  static async create(options: RuntimeOptions = {}): Promise<Runtime> {
    const loaded = loadConfig({ file: options.configFile, config: options.config, env: options.env });
    const config = loaded.config;
    const log = options.logger ?? createLogger({ level: config.log.level });
    const registry = new ToolRegistry();
    registry.register(calculator);
    registry.register(currentTime);
    const fetchConfig = config.tools.http_fetch;
    registry.register(
      createHttpFetch({
        allowedHosts: fetchConfig.allowed_hosts,
        maxBytes: fetchConfig.max_bytes,
        timeoutMs: fetchConfig.timeout_ms,
      }),
    );
    const sandbox = new Sandbox(config.sandbox, log);
    for (const tool of createSandboxTools(sandbox)) registry.register(tool);
    for (const tool of options.tools ?? []) registry.register(tool, { replace: true });
    for (const agent of options.agents ?? []) {
      for (const tool of agent.tools ?? [])
        if (typeof tool !== 'string') registry.register(tool, { replace: true });
    }

    const mcp = await connectMcpServers(config.agents, log);
    for (const tool of mcp.tools) registry.register(tool, { replace: true });
    const store = options.store ?? (await openStore(config));
    const providers = await startProviders(config, options.env);
    const admission = createAdmission(config, log);
    const tracing = await Tracing.fromEnv(options.env ?? process.env, VERSION);
    if (tracing.enabled) log.info('tracing: exporting spans over OTLP/HTTP');
    let runtime: Runtime | undefined;
    const memory = config.memory.enabled
      ? await createLongTermMemory({
          config: config.memory,
          storage: config.storage,
          env: options.env ?? process.env,
          mockUrl: providers.mock?.url,
          observer: { start: (mode, parent) => runtime!.#observeSearch(mode, parent) },
        }).catch(async (err: unknown) => {
          await providers.close();
          throw err;
        })
      : undefined;
    if (memory !== undefined) {
      // A tool of the same name declared in code wins over the built-in one.
      for (const tool of createMemoryTools(memory)) if (!registry.has(tool.name)) registry.register(tool);
      memory.startSweeper(config.memory.sweep_interval_ms, (err) =>
        log.warn({ err }, 'purging expired memories failed'),
      );
      const mismatch = memory.embedderMismatch;
      if (mismatch !== undefined)
        log.warn(
          { stored: mismatch, configured: memory.embedder.name },
          'memory: stored vectors come from another embedder; semantic search is off until `agentd memory reindex`',
        );
    }
    runtime = new Runtime(
      config,
      loaded.providerSource,
      log,
      store,
      providers,
      registry,
      admission,
      tracing,
      sandbox,
    );
    runtime.#memory = memory;
    runtime.#closeMcp = mcp.close;
    runtime.#startSweepers();
    try {
      const addConfiguredAgent = (name: string): void => {
        const agentConfig = config.agents[name]!;
        const mcpTools = mcp.byAgent.get(name) ?? [];
        const tools = mcpTools.length === 0 ? agentConfig.tools : [...agentConfig.tools, ...mcpTools];
        runtime!.#addAgent(Agent.fromConfig(name, { ...agentConfig, tools }), `agents.${name}`);
      };
      for (const name of Object.keys(config.agents)) addConfiguredAgent(name);
      // A server's new tool list applies to tasks that start from now on; running ones keep theirs
      // (a call to a tool that is gone fails as AGENTD_TOOL_NOT_FOUND, which the model sees).
      mcp.onToolsChanged((change) => {
        for (const name of change.removed) registry.unregister(name);
        for (const tool of change.tools) registry.register(tool, { replace: true });
        for (const name of change.agents) addConfiguredAgent(name);
      });
      for (const agent of options.agents ?? [])
        runtime.#addAgent(Agent.fromOptions(agent), `agent "${agent.name}"`);
      if (providers.mock !== undefined) {
        log.warn(
          { mock_url: providers.mock.url },
          'no LLM provider configured (set OPENAI_API_KEY, DEEPSEEK_API_KEY or AGENTD_PROVIDER_BASE_URL): using the built-in mock model',
        );
      }
      if (config.distributed.enabled) runtime.#cluster = await runtime.#joinCluster();
      else if (options.recover !== false) await runtime.#recover();
      runtime.#prewarmSandbox();
    } catch (err) {
      await runtime.close({ drainMs: 0 });
      throw err;
    }
    return runtime;
  }

  /** Runs one tool directly, outside any task (`POST /v1/tools/{name}/execute`, `agentd tool run`). */
  executeTool(request: ToolExecutionRequest): Promise<ToolCallOutcome> {
    if (this.#draining) throw new ShuttingDownError('agentd is shutting down', { retryAfterMs: 5000 });
    return executeTool(
      {
        registry: this.registry,
        executor: this.#executor,
        agent: (name) => this.#agents.get(name),
        directTools: this.config.tools.direct_execute,
        defaultTimeoutMs: 30_000,
      },
      request,
    );
  }

  /** Long-term memory (undefined when `memory.enabled` is false). */
  get memory(): LongTermMemory | undefined {
    return this.#memory;
  }

  /** Times each memory search (`agentd_memory_search_duration_seconds`) and traces it in its task. */
  #observeSearch(
    mode: string,
    parent: Parameters<SearchObserver['start']>[1],
  ): ReturnType<SearchObserver['start']> {
    const started = performance.now();
    const span = this.tracing.startChild(parent, 'memory.search', { 'agentd.memory.mode': mode });
    return (result, error) => {
      this.metrics.memorySearch.with(mode).observe((performance.now() - started) / 1000);
      if (span === undefined) return;
      const failure = error === undefined ? null : toAgentdError(error);
      endSpan(
        span,
        {
          'agentd.memory.hits': result?.hits.length ?? 0,
          'agentd.memory.candidates': result?.candidates ?? 0,
          'agentd.memory.strategy': result?.strategy ?? 'none',
        },
        failure === null ? null : { code: failure.code, message: failure.message },
      );
    };
  }

  /** Agents by name, in declaration order. */
  agents(): Agent[] {
    return [...this.#agents.values()];
  }

  agent(name: string): Agent | undefined {
    return this.#agents.get(name);
  }

  /** The embedded mock model's base URL, when the mock provider is in use. */
  get mockUrl(): string | undefined {
    return this.#providers.mock?.url;
  }

  /** Validates and admits a task, persists it, and schedules it. */
  async submit(request: SubmitRequest): Promise<Submission> {
    if (this.#draining) throw new ShuttingDownError('agentd is shutting down', { retryAfterMs: 5000 });
    const agent = this.#agents.get(request.agent);
    if (agent === undefined) {
      throw new NotFoundError(`no agent named "${request.agent}"`, { details: { field: 'agent' } });
    }
    const input = request.input;
    if (typeof input !== 'string' || input.length === 0) {
      throw new InvalidRequestError('`input` must be a non-empty string', { details: { field: 'input' } });
    }
    if (input.length > this.config.tasks.max_input_chars) {
      throw new PayloadTooLargeError(
        `\`input\` is longer than ${this.config.tasks.max_input_chars} characters`,
        {
          details: { field: 'input', limit: 'max_input_chars', max: this.config.tasks.max_input_chars },
        },
      );
    }
    this.#checkSelector(request, agent);
    if (request.tools !== undefined) {
      for (const name of request.tools) {
        if (!agent.allowedTools.has(name)) {
          throw new ToolForbiddenError(`tool "${name}" is not allowed for agent "${agent.name}"`, {
            details: { field: 'tools', tool: name },
          });
        }
      }
    }
    const identity = request.identity ?? tenantIdentity(request.tenantId ?? DEFAULT_TENANT, request.userId);
    const tenantId = identity.tenantId;
    const sessionId = request.sessionId ?? null;
    if (sessionId !== null) {
      let session = await this.store.getSession(sessionId);
      // An expired session the sweeper has not reached yet behaves as a new one already.
      if (session !== undefined && this.#sessionSweeper?.expired(session.updated_at) === true) {
        await this.store.deleteSession(sessionId);
        session = undefined;
      }
      if (session !== undefined && session.tenant_id !== tenantId) {
        throw new NotFoundError(`no session "${sessionId}"`, { details: { field: 'session_id' } });
      }
      if (session !== undefined) this.#checkSessionBudget(session);
    }
    const key = request.idempotencyKey;
    if (key !== undefined) {
      const existing = await this.#findIdempotent(tenantId, key);
      if (existing !== undefined) return { task: existing, created: false };
    }
    if (!this.#scheduler.hasRoom()) {
      throw new QueueFullError(`the task queue is full (${this.config.tasks.max_queue} waiting)`, {
        retryAfterMs: 1000,
        details: { limit: 'tasks.max_queue' },
      });
    }
    // Admission: refused requests leave no task and no charge.
    const id = uuidv7();
    const estimate =
      estimateTokens(agent.systemPrompt) +
      estimateTokens(input) +
      (agent.maxOutputTokens ?? DEFAULT_OUTPUT_ESTIMATE);
    let admitted: Admitted;
    try {
      const decision = this.admission.admit(identity, agent.name, id, estimate);
      admitted = decision instanceof Promise ? await decision : decision;
    } catch (err) {
      const refusal = toAgentdError(err);
      this.metrics.rejections.with(String(refusal.details?.limit ?? refusal.code)).inc();
      throw err;
    }

    const record: TaskRecord = {
      id,
      agent: agent.name,
      tenant_id: tenantId,
      user_id: identity.userId ?? null,
      session_id: sessionId,
      status: 'queued',
      input,
      result: null,
      partial: false,
      error: null,
      model: null,
      usage: { input_tokens: 0, output_tokens: 0 },
      cost_usd: 0,
      iterations: 0,
      tool_calls: 0,
      idempotency_key: key ?? null,
      metadata: request.metadata ?? null,
      options: taskOptions(
        request,
        request.priority ?? identity.limits?.priority ?? this.#tenantPriority(tenantId),
      ),
      attempt: 1,
      event_seq: 0,
      created_at: Date.now(),
      started_at: null,
      finished_at: null,
    };
    const task = new Task(record, this.config.tasks.event_buffer);
    task.traceparent = request.traceparent;
    task.events.append('task.queued', agent.eventData);
    if (this.#cluster !== undefined)
      return this.#submitToCluster(this.#cluster, task, admitted, request.durable);
    this.#active.set(record.id, task);
    if (key !== undefined) this.#idempotency.set(`${tenantId}\u0000${key}`, task);
    if (admitted instanceof QueuedAdmission) {
      // Accepted, waiting for a concurrency slot: stored now, scheduled when the slot is granted.
      admitted.granted.then(
        (ticket) => this.#schedule(task, ticket),
        (err: unknown) => this.#failQueued(task, err),
      );
    } else {
      this.#schedule(task, admitted);
    }
    const persisted = this.store.insertTask(record, request.durable === true);
    if (request.durable === true) {
      try {
        await persisted;
      } catch (err) {
        task.cancellation.abortWith(new CancelledError('the task could not be stored'));
        throw err;
      }
    } else if (persisted !== this.#watchedInsert) {
      // Stores may hand every insert of one batch the same commit promise: watch each once.
      this.#watchedInsert = persisted;
      persisted.catch((err: unknown) =>
        this.log.error({ err, task_id: record.id }, 'storing a task (and any batched with it) failed'),
      );
    }
    return { task, created: true };
  }

  /** Library convenience: runs an agent and resolves with the finished task. */
  run(
    agent: string,
    input: string,
    options: Omit<SubmitRequest, 'agent' | 'input'> = {},
  ): Promise<TaskRecord> {
    // A promise chain, not an async function: no suspended frame per waiting caller while the
    // task runs (10,000 callers in flight would each hold one).
    return this.submit({ ...options, agent, input }).then(finishedRecord);
  }

  /** A task in this process (running, queued or recently finished), if the tenant owns it. */
  liveTask(id: string, tenantId: string): Task | undefined {
    const task = this.#active.get(id) ?? this.#recent?.get(id);
    return task !== undefined && task.record.tenant_id === tenantId ? task : undefined;
  }

  async getTask(id: string, tenantId: string): Promise<TaskRecord | undefined> {
    const live = this.liveTask(id, tenantId);
    if (live !== undefined) return live.record;
    const stored = await this.store.getTask(id);
    return stored !== undefined && stored.tenant_id === tenantId ? stored : undefined;
  }

  listTasks(query: TaskQuery): Promise<Page<TaskRecord>> {
    return this.store.listTasks(query);
  }

  /** Cancels a queued or running task; a finished task is returned unchanged. */
  async cancel(id: string, tenantId: string): Promise<TaskRecord | undefined> {
    const task = this.#active.get(id);
    if (task === undefined || task.record.tenant_id !== tenantId) {
      return this.#cluster === undefined ? this.getTask(id, tenantId) : this.#cluster.cancel(id, tenantId);
    }
    this.#cancelHere(task);
    return task.record;
  }

  /** Cancels a task queued or running in this process. */
  #cancelHere(task: Task): void {
    if (this.#scheduler.remove(task)) {
      task.finish('cancelled', null, new CancelledError('cancelled before it started').toBody());
      this.store.updateTask(task.record);
      this.#retire(task);
    } else {
      task.cancellation.abortWith(new CancelledError('cancelled by request'));
    }
  }

  /** Opens a task's event stream after `afterSeq`; undefined when the tenant has no such task. */
  async events(
    id: string,
    tenantId: string,
    after: { attempt: number; seq: number },
    listener: TaskEventListener,
  ): Promise<EventStream | undefined> {
    if (this.#cluster !== undefined) {
      // Distributed, every node serves the same ids: those of the task's shared stream.
      const owner = this.liveTask(id, tenantId)?.record ?? (await this.store.getTask(id));
      if (owner === undefined || owner.tenant_id !== tenantId) return undefined;
      const shared = await this.#cluster.events(id, after, listener);
      if (shared !== undefined) return shared;
    }
    const task = this.liveTask(id, tenantId);
    if (task !== undefined) {
      // Ids from an earlier run of a restarted task replay the current run from its start.
      const afterSeq = after.attempt === task.record.attempt ? after.seq : 0;
      const subscription: Subscription = task.events.subscribe(afterSeq, listener);
      return {
        backlog: subscription.backlog,
        gap: subscription.gap,
        finished: task.events.closed,
        attempt: task.record.attempt,
        unsubscribe: subscription.unsubscribe,
      };
    }
    const stored = await this.store.getTask(id);
    if (stored === undefined || stored.tenant_id !== tenantId) return undefined;
    // A task not live here: its row holds everything its final event carried.
    const afterSeq = after.attempt === stored.attempt ? after.seq : 0;
    const finished = TERMINAL_STATUSES.has(stored.status);
    const backlog =
      finished && stored.event_seq > afterSeq
        ? [
            {
              seq: stored.event_seq,
              type: 'task.completed',
              data: completionData(stored),
              at: stored.finished_at ?? 0,
            },
          ]
        : [];
    return { backlog, gap: false, finished: true, attempt: stored.attempt, unsubscribe: () => {} };
  }

  #startSweepers(): void {
    const { sessions, tasks } = this.config;
    this.#sessionSweeper = this.#startSweeper(
      sessions.idle_ttl_ms,
      sessions.sweep_interval_ms,
      (before, limit) => this.store.deleteIdleSessions(before, limit),
      'idle sessions',
    );
    this.#taskSweeper = this.#startSweeper(
      tasks.retention_ms,
      tasks.retention_sweep_interval_ms,
      (before, limit) => this.store.deleteFinishedTasks(before, limit),
      'finished tasks past retention',
    );
  }

  /** A running sweeper when `ttlMs` is configured. */
  #startSweeper(
    ttlMs: number | undefined,
    intervalMs: number,
    deleteBatch: DeleteBatch,
    what: string,
  ): Sweeper | undefined {
    if (ttlMs === undefined) return undefined;
    const sweeper = new Sweeper(ttlMs, deleteBatch, (err) =>
      this.log.warn({ err }, `deleting ${what} failed`),
    );
    sweeper.start(intervalMs);
    return sweeper;
  }

  /** Deletes sessions idle past `sessions.idle_ttl_ms` now (the sweeper does it periodically); how many. */
  sweepSessions(): Promise<number> {
    return this.#sessionSweeper?.sweep() ?? Promise.resolve(0);
  }

  /** Deletes finished tasks past `tasks.retention_ms` now (the sweeper does it periodically); how many. */
  sweepTasks(now?: number): Promise<number> {
    return this.#taskSweeper?.sweep(now) ?? Promise.resolve(0);
  }

  /** Deletes a session the tenant owns, with its messages; false when there is none. */
  async deleteSession(sessionId: string, tenantId: string): Promise<boolean> {
    const session = await this.store.getSession(sessionId);
    if (session === undefined || session.tenant_id !== tenantId) return false;
    return this.store.deleteSession(sessionId);
  }

  /** A session's messages, if the tenant owns the session. */
  async sessionMessages(
    sessionId: string,
    tenantId: string,
    afterSeq: number,
    limit: number,
  ): Promise<Page<StoredMessage> | undefined> {
    const session = await this.store.getSession(sessionId);
    if (session === undefined || session.tenant_id !== tenantId) return undefined;
    if (this.#sessionSweeper?.expired(session.updated_at) === true) {
      await this.store.deleteSession(sessionId);
      return undefined;
    }
    return this.store.listMessages(sessionId, afterSeq, limit);
  }

  health(): HealthReport {
    return {
      status: this.#draining ? 'draining' : 'ok',
      version: VERSION,
      uptime_seconds: Math.round((Date.now() - this.#startedAt) / 1000),
      active_tasks: this.#scheduler.active,
      queued_tasks: this.#scheduler.queued,
      total_tasks: this.#finishedTasks,
      store: this.store.kind,
      provider: this.providerSource,
    };
  }

  /**
   * Readiness with its reasons: storage reachable, not draining, the resource guard not refusing,
   * shared limits reachable (or failing open); plus every circuit breaker's state.
   */
  async readiness(): Promise<{ ready: boolean; checks: Record<string, unknown> }> {
    const storage = await this.store.ping();
    const backend = this.admission.backend;
    const redis =
      backend instanceof RedisLimits
        ? backend.available
          ? 'ok'
          : `unreachable (failing ${backend.failMode})`
        : undefined;
    const resource = this.admission.guard?.snapshot();
    const breakers: Record<string, unknown>[] = [];
    for (const route of this.router.routes())
      breakers.push({ target: `model:${route.id}`, ...route.breaker.snapshot() });
    for (const breaker of this.#executor.breakers())
      breakers.push({ target: breaker.name, ...breaker.snapshot() });
    const ready =
      storage &&
      !this.#draining &&
      resource?.state !== 'refuse' &&
      (redis === undefined || redis === 'ok' || (backend as RedisLimits).failMode === 'open');
    const checks: Record<string, unknown> = {
      storage: storage ? 'ok' : 'unreachable',
      draining: this.#draining,
      waiting_for_slots: this.admission.queued(),
      breakers,
    };
    if (redis !== undefined) checks.redis = redis;
    if (resource !== undefined) checks.resource = resource;
    return { ready, checks };
  }

  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Stops accepting tasks, lets running ones finish for up to `drainMs`, then closes providers
   * and storage. Queued tasks stay queued in storage and run at the next start.
   */
  async close(options: { drainMs?: number } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#draining = true;
    this.#scheduler.pause();
    this.#adaptive?.close();
    await this.#cluster?.pause();
    const drainMs = options.drainMs ?? 30_000;
    if (this.#scheduler.active > 0 && drainMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.#scheduler.whenIdle(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, drainMs);
        }),
      ]);
      clearTimeout(timer);
    }
    // Jobs this node still holds go back to the others once their locks expire.
    await this.#cluster?.close();
    await this.#sessionSweeper?.stop();
    await this.#taskSweeper?.stop();
    // Storage closes first, so tasks abandoned past the drain deadline stay `running` in it and
    // are recovered by the next start (per their agent's `on_interrupt`), rather than failed here.
    await this.store.close();
    await this.#memory?.close();
    this.admission.guard?.close();
    await this.admission.backend.close();
    for (const task of this.#active.values()) {
      if (task.status === 'running')
        task.cancellation.abortWith(new InterruptedError('agentd stopped before the task ended'));
    }
    await this.#providers.close();
    await this.tracing.shutdown();
    await this.sandbox.close();
    await this.#closeMcp?.();
    for (const client of this.#cacheRedis) client.disconnect();
  }

  /** The response and tool-result caches: L1 here, L2 on Redis when `redis.url` is set. */
  #createCaches(): { responses: ResponseCache; results: MultiLevelCache<{ r: unknown }> } | undefined {
    const config = this.config.cache;
    if (!config.enabled) return undefined;
    let redis: { client: Redis; subscriber: Redis; prefix: string } | undefined;
    if (this.config.redis.url !== undefined) {
      const options = {
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
      } as const;
      const client = new Redis(this.config.redis.url, options);
      const subscriber = new Redis(this.config.redis.url, { maxRetriesPerRequest: 1 });
      for (const connection of [client, subscriber]) connection.on('error', () => {});
      this.#cacheRedis.push(client, subscriber);
      redis = { client, subscriber, prefix: this.config.redis.key_prefix };
    }
    const common = {
      maxEntries: config.max_entries,
      maxBytes: config.max_bytes,
      negativeTtlMs: config.negative_ttl_ms,
      redis,
      metrics: this.metrics,
    };
    return {
      responses: new ResponseCache(
        new MultiLevelCache<CachedReply>({
          name: 'llm_response',
          defaultTtlMs: config.response_ttl_ms,
          ...common,
        }),
        config.response_ttl_ms,
      ),
      results: new MultiLevelCache<{ r: unknown }>({ name: 'tool_result', defaultTtlMs: 60_000, ...common }),
    };
  }

  #registerGauges(): void {
    const metrics = this.metrics;
    metrics.gauge('agentd_active_tasks', 'Tasks running now', [], () => [[[], this.#scheduler.active]]);
    metrics.gauge(
      'agentd_queue_depth',
      'Tasks waiting to run (scheduler queue and concurrency queues)',
      [],
      () => [[[], this.#scheduler.queued + this.admission.queued()]],
    );
    const states = { closed: 0, half_open: 1, open: 2 } as const;
    metrics.gauge(
      'agentd_circuit_state',
      'Circuit breaker state: 0 closed, 1 half-open, 2 open',
      ['target'],
      () => {
        const rows: [string[], number][] = [];
        for (const route of this.router.routes())
          rows.push([[`model:${route.id}`], states[route.breaker.state]]);
        for (const breaker of this.#executor.breakers()) rows.push([[breaker.name], states[breaker.state]]);
        return rows;
      },
    );
  }

  #addAgent(agent: Agent, where: string): void {
    for (const tool of agent.tools) {
      if (!this.registry.has(tool)) {
        throw new ConfigError(
          `${where}: unknown tool "${tool}" (known: ${this.registry.names().join(', ')})`,
        );
      }
    }
    if (agent.model !== undefined) this.router.resolve({}, agent.model);
    this.#agents.set(agent.name, agent);
  }

  /** Starts the sandbox pools that some agent (or tools.direct_execute) will use, in the background. */
  #prewarmSandbox(): void {
    if (!this.config.sandbox.prewarm) return;
    const languages = new Set<Language>();
    const names = [
      ...this.config.tools.direct_execute,
      ...[...this.#agents.values()].flatMap((a) => a.tools),
    ];
    for (const name of names) {
      const language = sandboxLanguage(name);
      if (language !== undefined) languages.add(language);
    }
    if (languages.size === 0) return;
    this.sandbox
      .warm([...languages])
      .catch((err: unknown) => this.log.warn({ err }, 'starting the sandbox failed'));
  }

  #checkSelector(request: SubmitRequest, agent: Agent): void {
    // No selector and an agent model (resolved when the agent was added): nothing to check.
    if (
      request.model === undefined &&
      request.tier === undefined &&
      request.mode === undefined &&
      agent.model !== undefined
    )
      return;
    if (request.tier !== undefined && !(TIERS as readonly string[]).includes(request.tier)) {
      throw new InvalidRequestError(`\`tier\` must be one of ${TIERS.join(', ')}`, {
        details: { field: 'tier' },
      });
    }
    if (request.mode !== undefined && !(MODES as readonly string[]).includes(request.mode)) {
      throw new InvalidRequestError(`\`mode\` must be one of ${MODES.join(', ')}`, {
        details: { field: 'mode' },
      });
    }
    // Resolving now turns an unknown model into a 400 at submission rather than a failed task.
    this.router.resolve(
      {
        model: request.model,
        tier: request.tier as (typeof TIERS)[number] | undefined,
        mode: request.mode as (typeof MODES)[number] | undefined,
      },
      agent.model,
    );
  }

  async #findIdempotent(tenantId: string, key: string): Promise<Task | undefined> {
    const live = this.#idempotency.get(`${tenantId}\u0000${key}`);
    if (live !== undefined) return live;
    const stored = await this.store.findTaskByIdempotencyKey(tenantId, key);
    if (stored === undefined) return undefined;
    // Another submission with this key may have been admitted while the store was read.
    const raced = this.#idempotency.get(`${tenantId}\u0000${key}`);
    if (raced !== undefined) return raced;
    const running = this.liveTask(stored.id, tenantId);
    if (running !== undefined) return running;
    const task = new Task(stored, this.config.tasks.event_buffer);
    // Distributed, a replay waits on the node running the task like the first submission did.
    return this.#cluster === undefined ? task : this.#cluster.awaitTask(task);
  }

  #execute(task: Task): Promise<void> {
    if (task.finished) return Promise.resolve();
    const agent = this.#agents.get(task.record.agent);
    if (agent === undefined) {
      task.finish(
        'failed',
        null,
        new NotFoundError(`agent "${task.record.agent}" no longer exists`).toBody(),
      );
      this.store.updateTask(task.record);
      this.#retire(task);
      return Promise.resolve();
    }
    // runTask never rejects, and retires the task itself (`LoopDeps.retire`): no suspended frame
    // and no further promise per running task.
    return runTask(task, agent, this.#loopDeps());
  }

  /** What the agent loop uses, built once (every field is fixed once the runtime is created). */
  #loopDeps(): LoopDeps {
    this.#deps ??= {
      router: this.router,
      tools: this.#executor,
      registry: this.registry,
      store: this.store,
      admission: this.admission,
      limits: this.config.limits,
      metrics: this.metrics,
      tracing: this.tracing,
      responses: this.responses,
      memory: this.#memory,
      retire: (task) => this.#retire(task),
    };
    return this.#deps;
  }

  /** Hands an admitted task to the scheduler (which has room: checked before admission). */
  #schedule(task: Task, ticket: TaskTicket): void {
    task.ticket = ticket;
    if (task.finished) {
      this.admission.release(ticket);
      return;
    }
    this.#scheduler.submit(task, { force: true });
  }

  /** A queued task that could not start before its deadline fails at once. */
  #missedDeadline(task: Task): void {
    if (task.finished) return;
    const deadline = task.record.options.deadline_at ?? 0;
    task.finish(
      'failed',
      null,
      new DeadlineExceededError('the task could not start before its deadline', {
        details: {
          limit: 'deadline',
          deadline: new Date(deadline).toISOString(),
          waited_ms: Date.now() - task.record.created_at,
        },
      }).toBody(),
    );
    this.store.updateTask(task.record);
    this.#retire(task);
  }

  #tenantPriority(tenant: string): number | undefined {
    const limits = this.config.limits;
    return limits.tenants[tenant]?.priority ?? limits.default_tenant?.priority;
  }

  /** A task that waited for a slot and gave up (queue timeout): it fails with the reason. */
  #failQueued(task: Task, err: unknown): void {
    if (task.finished) return;
    task.finish('failed', null, toAgentdError(err).toBody());
    this.store.updateTask(task.record);
    this.#retire(task);
  }

  #checkSessionBudget(session: SessionRecord): void {
    const limits = this.config.limits.session;
    const checks: [string, number, number | undefined][] = [
      ['session.max_tokens', session.tokens_used, limits.max_tokens],
      ['session.max_usd', session.usd_used, limits.max_usd],
    ];
    for (const [limit, used, max] of checks) {
      if (max !== undefined && used >= max) {
        throw new BudgetExhaustedError(`session ${session.id} has spent its budget (${limit}: ${max})`, {
          details: { limit, used, budget: max },
        });
      }
    }
  }

  #retire(task: Task): void {
    if (task.ticket !== undefined) {
      this.admission.release(task.ticket);
      // A finished task stays among the recent ones (resume, reads): it keeps no admission.
      task.ticket = undefined;
    }
    const record = task.record;
    if (record.status === 'failed' || this.log.isLevelEnabled('debug')) {
      const fields = {
        task_id: record.id,
        tenant: record.tenant_id,
        agent: record.agent,
        status: record.status,
        code: record.error?.code,
        trace_id: task.span?.spanContext().traceId,
      };
      if (record.status === 'failed') this.log.warn(fields, `task failed: ${record.error?.message ?? ''}`);
      else this.log.debug(fields, 'task finished');
    }
    this.#forget(task);
    this.#recent?.set(task.id, task);
    this.#finishedTasks++;
  }

  #forget(task: Task): void {
    this.#active.delete(task.id);
    const key = task.record.idempotency_key;
    if (key !== null) this.#idempotency.delete(`${task.record.tenant_id}\u0000${key}`);
  }

  /**
   * Distributed submission: the task is durable in Postgres before it is queued on Redis, and queued
   * before it is acknowledged (when `durable`); any node then runs it. A task waiting for a
   * concurrency slot is queued once the slot is granted.
   */
  async #submitToCluster(
    cluster: Cluster,
    task: Task,
    admitted: Admitted,
    durable: boolean | undefined,
  ): Promise<Submission> {
    const record = task.record;
    const key = record.idempotency_key;
    if (key !== null) this.#idempotency.set(`${record.tenant_id}\u0000${key}`, task);
    const persisted = this.store.insertTask(record, true);
    const queued = admitted instanceof QueuedAdmission;
    // A task waiting for a slot can be followed (SSE) before it is queued.
    const announced = queued ? persisted.then(() => cluster.announce(task)) : undefined;
    // Its failure is reported by the dispatch that awaits it (if the slot is ever granted).
    announced?.catch(() => {});
    const dispatch = async (ticket: TaskTicket): Promise<void> => {
      task.ticket = ticket;
      await persisted;
      if (announced !== undefined) await announced;
      await cluster.dispatch(task, announced !== undefined);
    };
    const dispatched = queued ? admitted.granted.then(dispatch) : dispatch(admitted as TaskTicket);
    if (durable === true) {
      try {
        await (queued ? persisted : dispatched);
      } catch (err) {
        this.#failDispatch(cluster, task, err);
        throw err;
      }
    }
    dispatched.catch((err: unknown) => this.#failDispatch(cluster, task, err));
    return { task, created: true };
  }

  /** A task that could not be stored or queued fails here (it never reached another node). */
  #failDispatch(cluster: Cluster, task: Task, err: unknown): void {
    cluster.forget(task.id);
    if (task.finished) return;
    this.log.error({ err, task_id: task.id }, 'queueing a task failed');
    task.finish('failed', null, toAgentdError(err).toBody());
    this.store.updateTask(task.record);
    if (task.ticket !== undefined) this.admission.release(task.ticket);
    this.#forget(task);
  }

  /** Joins the cluster: this node's scheduler runs what the shared queue hands it. */
  #joinCluster(): Promise<Cluster> {
    const limits = this.config.limits;
    return Cluster.start({
      config: this.config,
      log: this.log,
      store: this.store,
      metrics: this.metrics,
      agent: (name) => this.#agents.get(name),
      weight: (tenant) => limits.tenants[tenant]?.weight ?? limits.default_tenant?.weight ?? 1,
      runHere: (task) => {
        this.#active.set(task.id, task);
        const key = task.record.idempotency_key;
        if (key !== null) this.#idempotency.set(`${task.record.tenant_id}\u0000${key}`, task);
        this.#scheduler.submit(task, { force: true });
      },
      cancelHere: (id) => {
        const task = this.#active.get(id);
        if (task === undefined) return false;
        this.#cancelHere(task);
        return true;
      },
      finishedElsewhere: (task) => {
        const ticket = task.ticket;
        if (ticket !== undefined) {
          // The node that ran it charged no budget of this ticket: charge the total here.
          const tokens = task.record.usage.input_tokens + task.record.usage.output_tokens;
          Promise.resolve(this.admission.settle(ticket, tokens, task.record.cost_usd)).catch(() => {});
          this.admission.release(ticket);
        }
        this.#forget(task);
      },
    });
  }

  /** Requeues tasks a previous process left queued, and running ones per their agent's policy. */
  async #recover(): Promise<void> {
    const unfinished = await this.store.unfinishedTasks();
    let requeued = 0;
    let failed = 0;
    for (const record of unfinished) {
      const agent = this.#agents.get(record.agent);
      const task = new Task(record, this.config.tasks.event_buffer);
      if (agent === undefined || (record.status === 'running' && agent.onInterrupt === 'fail')) {
        const reason =
          agent === undefined
            ? new NotFoundError(`agent "${record.agent}" no longer exists`)
            : new InterruptedError('agentd stopped while the task was running');
        task.finish('failed', null, reason.toBody());
        this.store.updateTask(task.record);
        failed++;
        continue;
      }
      if (record.status === 'running') record.attempt++;
      record.status = 'queued';
      record.started_at = null;
      this.store.updateTask(record);
      task.events.append('task.queued', { agent: record.agent, recovered: true });
      this.#active.set(record.id, task);
      if (record.idempotency_key !== null) {
        this.#idempotency.set(`${record.tenant_id}\u0000${record.idempotency_key}`, task);
      }
      this.#scheduler.submit(task, { force: true });
      requeued++;
    }
    if (unfinished.length > 0) this.log.info({ requeued, failed }, 'recovered tasks left by a previous run');
  }
}

/** The options of most tasks (none given): one shared object, never written to. */
const NO_OPTIONS: TaskOptions = Object.freeze({});

/** A task's options as requested; tasks that set none share NO_OPTIONS (same JSON, nothing retained). */
function taskOptions(request: SubmitRequest, priority: number | undefined): TaskOptions {
  const { model, tier, mode, tools, timeoutMs, deadlineMs, cache } = request;
  if (
    model === undefined &&
    tier === undefined &&
    mode === undefined &&
    tools === undefined &&
    priority === undefined &&
    timeoutMs === undefined &&
    deadlineMs === undefined &&
    cache === undefined
  )
    return NO_OPTIONS;
  return {
    model,
    tier,
    mode,
    tools,
    priority,
    timeout_ms: timeoutMs,
    deadline_at: deadlineMs === undefined ? undefined : Date.now() + deadlineMs,
    cache,
  };
}

/** The record of a submitted task once it has finished. */
function finishedRecord(submission: Submission): Promise<TaskRecord> {
  return submission.task.whenFinished();
}
