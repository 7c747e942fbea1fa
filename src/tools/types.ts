import type { Static, TSchema } from 'typebox';
import type { JsonSchema } from '../llm/index.js';

/** What a tool handler knows about the call it serves. */
export interface ToolContext {
  /** Aborts when the task is cancelled or the tool's deadline passes. */
  signal: AbortSignal;
  taskId: string;
  tenantId: string;
  /** The task's user and session, when it has them (memory tools scope by these). */
  userId?: string | null | undefined;
  sessionId?: string | null | undefined;
  agent: string;
  callId: string;
  /**
   * A key for side effects (payments, e-mails): the same for the same call of the same task, also
   * when a restart runs the task again and the model repeats the call. Pass it to the systems you
   * change so that a retried task does not act twice.
   */
  idempotencyKey: string;
}

/** A tool the model can call: a name, a JSON-Schema for its arguments, and a handler. */
export interface ToolDefinition<Args = Record<string, unknown>, Result = unknown> {
  name: string;
  description: string;
  /** JSON Schema (an object schema) for the arguments; TypeBox schemas work as-is. */
  parameters: JsonSchema;
  /** Overrides the agent's `tool_timeout_ms` for this tool. */
  timeoutMs?: number;
  /** Results of equal arguments may be reused for this long (per tenant); off when unset. */
  cacheTtlMs?: number;
  handler(args: Args, ctx: ToolContext): Result | Promise<Result>;
}

const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Declares a tool. With a TypeBox schema the handler's arguments are typed from it:
 * `defineTool({ name, description, parameters: Type.Object({ q: Type.String() }), handler: ({ q }) => … })`.
 */
export function defineTool<S extends TSchema, Result>(
  definition: Omit<ToolDefinition<Static<S>, Result>, 'parameters'> & { parameters: S },
): ToolDefinition<Static<S>, Result> {
  if (!TOOL_NAME.test(definition.name)) {
    throw new TypeError(`tool name "${definition.name}" must match ${TOOL_NAME.source}`);
  }
  const parameters = definition.parameters as unknown as JsonSchema;
  if (parameters.type !== 'object')
    throw new TypeError(`tool "${definition.name}": parameters must be an object schema`);
  return { ...definition, parameters };
}
