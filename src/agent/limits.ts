import type { Config, Tier } from '../config/index.js';
import { type AgentdError, BudgetExhaustedError } from '../errors.js';
import type { TaskOptions, TaskRecord } from '../store/index.js';
import type { Agent } from './agent.js';

/** A task's effective limits: the agent's own, its request's, and the configured ceilings. */
export interface TaskLimits {
  maxIterations: number;
  maxOutputTokens: number | undefined;
  timeoutMs: number;
  /** Input + output tokens the task may use. */
  maxTokens: number | undefined;
  maxUsd: number | undefined;
  sessionMaxTokens: number | undefined;
  sessionMaxUsd: number | undefined;
  /** Near its budget, continue on the next cheaper tier instead of stopping. */
  stepDown: boolean;
}

/** The share of a budget after which a task steps down to a cheaper tier. */
export const STEP_DOWN_AT = 0.8;

/** The smaller of two optional limits (no rest array: this runs for every task). */
function least(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  return b === undefined || a < b ? a : b;
}

/** Resolves the limits of one task; no request or agent can exceed `limits.task`. */
export function taskLimits(agent: Agent, options: TaskOptions, limits: Config['limits']): TaskLimits {
  const ceiling = limits.task;
  return {
    maxIterations: least(agent.maxIterations, ceiling.max_iterations)!,
    maxOutputTokens: least(agent.maxOutputTokens, ceiling.max_output_tokens),
    timeoutMs: least(options.timeout_ms ?? agent.timeoutMs, ceiling.timeout_ms)!,
    maxTokens: least(agent.tokenBudget, ceiling.max_tokens),
    maxUsd: least(agent.maxUsd, ceiling.max_usd),
    sessionMaxTokens: limits.session.max_tokens,
    sessionMaxUsd: limits.session.max_usd,
    stepDown: agent.budgetStepDown,
  };
}

/** Usage a session had before this task started. */
export interface SessionUsage {
  tokens: number;
  usd: number;
}

/** The budget a task has spent (its own or its session's), as the error that stops it. */
export function spentBudget(
  limits: TaskLimits,
  record: TaskRecord,
  session: SessionUsage | undefined,
): AgentdError | undefined {
  const tokens = record.usage.input_tokens + record.usage.output_tokens;
  const usd = record.cost_usd;
  const checks: [string, number, number | undefined][] = [
    ['task.max_tokens', tokens, limits.maxTokens],
    ['task.max_usd', usd, limits.maxUsd],
  ];
  if (session !== undefined) {
    checks.push(['session.max_tokens', session.tokens + tokens, limits.sessionMaxTokens]);
    checks.push(['session.max_usd', session.usd + usd, limits.sessionMaxUsd]);
  }
  for (const [limit, used, max] of checks) {
    if (max !== undefined && used >= max) {
      return new BudgetExhaustedError(`${limit} reached: used ${round(used)} of ${max}`, {
        details: { limit, used: round(used), budget: max },
      });
    }
  }
  return undefined;
}

/** True when the task has used `STEP_DOWN_AT` of its token or cost budget. */
export function nearingBudget(limits: TaskLimits, record: TaskRecord): boolean {
  const tokens = record.usage.input_tokens + record.usage.output_tokens;
  return (
    (limits.maxTokens !== undefined && tokens >= limits.maxTokens * STEP_DOWN_AT) ||
    (limits.maxUsd !== undefined && record.cost_usd >= limits.maxUsd * STEP_DOWN_AT)
  );
}

const CHEAPER: Record<Tier, Tier | undefined> = { large: 'medium', medium: 'small', small: undefined };

/** The next cheaper tier, if any. */
export function cheaperTier(tier: Tier): Tier | undefined {
  return CHEAPER[tier];
}

function round(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
