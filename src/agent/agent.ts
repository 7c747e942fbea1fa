import { Value } from 'typebox/value';
import {
  type AgentConfig,
  type AgentMemoryConfig,
  type CompactionConfig,
  CompactionSchema,
  type ExtractionConfig,
  ExtractionSchema,
  type Tier,
} from '../config/index.js';
import type { ToolDefinition } from '../tools/index.js';

/** An agent declared in code with `defineAgent`. Every field but `name` has a default. */
export interface AgentOptions {
  name: string;
  description?: string;
  /** A model id from the configuration, `provider/model`, or a tier name. */
  model?: string;
  tier?: Tier;
  systemPrompt?: string;
  /** Tool names, or tool definitions (registered with the runtime automatically). */
  tools?: (string | ToolDefinition<never, unknown>)[];
  maxIterations?: number;
  timeoutMs?: number;
  toolTimeoutMs?: number;
  maxParallelTools?: number;
  /** Input + output tokens one task may use. */
  tokenBudget?: number;
  /** Cost in USD one task may reach. */
  maxUsd?: number;
  /** Near its budget, continue on the next cheaper tier instead of stopping. */
  budgetStepDown?: boolean;
  /** Reuse model replies for identical requests (always on at temperature 0). */
  cache?: boolean;
  temperature?: number;
  maxOutputTokens?: number;
  session?: { maxMessages?: number; maxTokens?: number; compaction?: Partial<CompactionConfig> };
  /** After a restart, run an interrupted task again (`retry`) or mark it failed (`fail`). */
  onInterrupt?: 'retry' | 'fail';
  /** Recall long-term memories into the context (same fields as the config's `memory`). */
  memory?: Partial<Omit<AgentMemoryConfig, 'extract'>> & { extract?: Partial<ExtractionConfig> };
}

/** An option object with the schema's defaults filled in; undefined when absent or disabled. */
function enabled<T extends { enabled: boolean }>(
  schema: typeof CompactionSchema | typeof ExtractionSchema,
  partial: Partial<T> | undefined,
): T | undefined {
  if (partial === undefined || partial.enabled === false) return undefined;
  return Value.Default(schema, structuredClone(partial)) as T;
}

/** Recall defaults, as in the config schema. */
function recallOptions(
  memory: Partial<Omit<AgentMemoryConfig, 'extract'>> | undefined,
): AgentMemoryConfig | undefined {
  if (memory?.recall !== true) return undefined;
  return {
    recall: true,
    top_k: memory.top_k ?? 5,
    max_tokens: memory.max_tokens ?? 1000,
    min_score: memory.min_score,
    mode: memory.mode ?? 'hybrid',
    scope: memory.scope ?? 'user',
  };
}

const AGENT_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Declares an agent in code; validates the name and numeric limits at once. */
export function defineAgent(options: AgentOptions): AgentOptions {
  if (!AGENT_NAME.test(options.name))
    throw new TypeError(`agent name "${options.name}" must match ${AGENT_NAME.source}`);
  for (const key of [
    'maxIterations',
    'timeoutMs',
    'toolTimeoutMs',
    'maxParallelTools',
    'tokenBudget',
  ] as const) {
    const value = options[key];
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
      throw new TypeError(`agent "${options.name}": ${key} must be a positive integer`);
    }
  }
  return options;
}

/** A resolved agent: fixed shape, every limit known. */
export class Agent {
  readonly name: string;
  readonly description: string;
  /** Model id or tier name used when a request does not choose. */
  readonly model: string | undefined;
  readonly systemPrompt: string;
  readonly tools: readonly string[];
  readonly allowedTools: ReadonlySet<string>;
  readonly maxIterations: number;
  readonly timeoutMs: number;
  readonly toolTimeoutMs: number;
  readonly maxParallelTools: number;
  readonly tokenBudget: number | undefined;
  readonly maxUsd: number | undefined;
  readonly budgetStepDown: boolean;
  readonly cache: boolean;
  readonly temperature: number | undefined;
  readonly maxOutputTokens: number | undefined;
  readonly windowMessages: number;
  readonly windowTokens: number;
  readonly onInterrupt: 'retry' | 'fail';
  /** Memory recall before each task; undefined when off. */
  readonly recall: AgentMemoryConfig | undefined;
  /** Session compaction; undefined when off. */
  readonly compaction: CompactionConfig | undefined;
  /** Fact extraction after each task; undefined when off. */
  readonly extraction: ExtractionConfig | undefined;
  /** The data of its tasks' `task.queued` and `task.started` events: one frozen object for all. */
  readonly eventData: Readonly<{ agent: string }>;

  private constructor(fields: Omit<Agent, 'allowedTools' | 'eventData'>) {
    this.name = fields.name;
    this.description = fields.description;
    this.model = fields.model;
    this.systemPrompt = fields.systemPrompt;
    this.tools = fields.tools;
    this.allowedTools = new Set(fields.tools);
    this.maxIterations = fields.maxIterations;
    this.timeoutMs = fields.timeoutMs;
    this.toolTimeoutMs = fields.toolTimeoutMs;
    this.maxParallelTools = fields.maxParallelTools;
    this.tokenBudget = fields.tokenBudget;
    this.maxUsd = fields.maxUsd;
    this.budgetStepDown = fields.budgetStepDown;
    this.cache = fields.cache;
    this.temperature = fields.temperature;
    this.maxOutputTokens = fields.maxOutputTokens;
    this.windowMessages = fields.windowMessages;
    this.windowTokens = fields.windowTokens;
    this.onInterrupt = fields.onInterrupt;
    this.recall = fields.recall;
    this.compaction = fields.compaction;
    this.extraction = fields.extraction;
    this.eventData = Object.freeze({ agent: fields.name });
  }

  static fromConfig(name: string, config: AgentConfig): Agent {
    return new Agent({
      name,
      description: config.description,
      model: config.model ?? config.tier,
      systemPrompt: config.system_prompt,
      tools: config.tools,
      maxIterations: config.max_iterations,
      timeoutMs: config.timeout_ms,
      toolTimeoutMs: config.tool_timeout_ms,
      maxParallelTools: config.max_parallel_tools,
      tokenBudget: config.token_budget,
      maxUsd: config.max_usd,
      budgetStepDown: config.budget_step_down,
      cache: config.cache,
      temperature: config.temperature,
      maxOutputTokens: config.max_output_tokens,
      windowMessages: config.session?.max_messages ?? 50,
      windowTokens: config.session?.max_tokens ?? 8_000,
      onInterrupt: config.on_interrupt,
      recall: recallOptions(config.memory),
      compaction: enabled(CompactionSchema, config.session?.compaction),
      extraction: enabled(ExtractionSchema, config.memory?.extract),
    });
  }

  static fromOptions(options: AgentOptions): Agent {
    return new Agent({
      name: options.name,
      description: options.description ?? '',
      model: options.model ?? options.tier,
      systemPrompt: options.systemPrompt ?? 'You are a helpful assistant.',
      tools: (options.tools ?? []).map((tool) => (typeof tool === 'string' ? tool : tool.name)),
      maxIterations: options.maxIterations ?? 8,
      timeoutMs: options.timeoutMs ?? 300_000,
      toolTimeoutMs: options.toolTimeoutMs ?? 30_000,
      maxParallelTools: options.maxParallelTools ?? 4,
      tokenBudget: options.tokenBudget,
      maxUsd: options.maxUsd,
      budgetStepDown: options.budgetStepDown ?? false,
      cache: options.cache ?? false,
      temperature: options.temperature,
      maxOutputTokens: options.maxOutputTokens,
      windowMessages: options.session?.maxMessages ?? 50,
      windowTokens: options.session?.maxTokens ?? 8_000,
      onInterrupt: options.onInterrupt ?? 'retry',
      recall: recallOptions(options.memory),
      compaction: enabled(CompactionSchema, options.session?.compaction),
      extraction: enabled(ExtractionSchema, options.memory?.extract),
    });
  }
}
