import type { Agent } from '../agent/index.js';
import { NotFoundError, ToolForbiddenError, ToolNotFoundError } from '../errors.js';
import { Cancellation } from '../lib/cancellation.js';
import { uuidv7 } from '../lib/ids.js';
import type { ToolCallOutcome, ToolExecutor, ToolRegistry } from '../tools/index.js';

/** A tool run outside any task: `POST /v1/tools/{name}/execute`, `agentd tool run`. */
export interface ToolExecutionRequest {
  tool: string;
  /** The tool's arguments (an object). */
  arguments: unknown;
  /** Run as this agent: its allow-list and its limits apply. */
  agent?: string | undefined;
  tenantId: string;
  /**
   * Who may run what without an agent: `'listed'` (the API) allows only `tools.direct_execute`;
   * `'any'` (the local CLI, whose user holds the configuration anyway) allows every tool.
   */
  direct: 'listed' | 'any';
  /** Stops the run (a client that hung up); a fresh one is made when absent. */
  cancellation?: Cancellation | undefined;
}

/** What tool execution needs from the runtime. */
export interface ToolExecutionContext {
  registry: ToolRegistry;
  executor: ToolExecutor;
  agent(name: string): Agent | undefined;
  directTools: readonly string[];
  defaultTimeoutMs: number;
}

/**
 * Runs one registered tool directly with the same checks as inside an agent: the allow-list,
 * the argument schema, the tool's deadline, and (through the tool) its own limits and
 * admission. A refusal before the run (unknown agent or tool, not allowed) throws; anything
 * after is in the outcome, as the model would see it.
 */
export async function executeTool(
  ctx: ToolExecutionContext,
  request: ToolExecutionRequest,
): Promise<ToolCallOutcome> {
  let allowed: ReadonlySet<string>;
  let agentName = '';
  let timeoutMs = ctx.defaultTimeoutMs;
  if (request.agent !== undefined) {
    const agent = ctx.agent(request.agent);
    if (agent === undefined)
      throw new NotFoundError(`no agent named "${request.agent}"`, { details: { field: 'agent' } });
    allowed = agent.allowedTools;
    agentName = agent.name;
    timeoutMs = agent.toolTimeoutMs;
  } else {
    allowed = request.direct === 'any' ? new Set(ctx.registry.names()) : new Set(ctx.directTools);
  }
  if (!ctx.registry.has(request.tool)) {
    throw new ToolNotFoundError(`no tool named "${request.tool}"`, { details: { tool: request.tool } });
  }
  if (!allowed.has(request.tool)) {
    throw new ToolForbiddenError(
      agentName === ''
        ? `tool "${request.tool}" cannot be run without an agent (it is not in tools.direct_execute)`
        : `tool "${request.tool}" is not allowed for agent "${agentName}"`,
      { details: { tool: request.tool, ...(agentName === '' ? {} : { agent: agentName }) } },
    );
  }
  const id = `call_${uuidv7()}`;
  return ctx.executor.runOne(
    {
      id,
      type: 'function',
      function: { name: request.tool, arguments: JSON.stringify(request.arguments ?? {}) },
    },
    {
      allowed,
      cancellation: request.cancellation ?? new Cancellation(),
      taskId: id,
      tenantId: request.tenantId,
      agent: agentName,
      timeoutMs,
      maxParallel: 1,
    },
  );
}
