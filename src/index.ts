/**
 * agentd as a library: `createRuntime` gives the same runtime the server uses, without an HTTP hop.
 *
 *   import { createRuntime, defineAgent, defineTool } from 'agentd';
 *   const runtime = await createRuntime({ agents: [defineAgent({ name: 'helper', tools: ['calculator'] })] });
 *   const task = await runtime.run('helper', 'What is 17*23?');
 */
import { Runtime, type RuntimeOptions } from './runtime/index.js';

/** Starts a runtime: loads configuration, providers and storage, and recovers unfinished tasks. */
export function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  return Runtime.create(options);
}

export { Agent, type AgentOptions, defineAgent, type TaskEvent, type TaskEventType } from './agent/index.js';
export { type Config, loadConfig, type Mode, type Tier } from './config/index.js';
export * from './errors.js';
export { Cancellation } from './lib/index.js';
export {
  type ChatMessage,
  type ChatRequest,
  type ChatResult,
  MockLlmServer,
  OpenAICompatibleProvider,
  type Provider,
  type ToolCall,
  type Usage,
} from './llm/index.js';
export { createLogger, type Logger } from './observability/index.js';
export {
  type EventStream,
  type HealthReport,
  Runtime,
  type RuntimeOptions,
  type Submission,
  type SubmitRequest,
  type ToolExecutionRequest,
  VERSION,
} from './runtime/index.js';
export type { Language, SandboxFile, SandboxResult, SandboxRunRequest } from './sandbox/index.js';
export { buildServer } from './server/index.js';
export type { Store, TaskRecord, TaskStatus } from './store/index.js';
export { defineTool, type ToolContext, type ToolDefinition } from './tools/index.js';
