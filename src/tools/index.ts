export {
  calculator,
  createHttpFetch,
  currentTime,
  evaluate,
  type HttpFetchOptions,
  hostAllowed,
} from './builtin/index.js';
export {
  type ToolCallOutcome,
  ToolExecutor,
  type ToolExecutorOptions,
  type ToolGate,
  type ToolRunContext,
} from './executor.js';
export { connectMcpServers, type McpServerConfig, type McpTools, mcpToolName } from './mcp.js';
export { type RegisteredTool, ToolRegistry } from './registry.js';
export { defineTool, type ToolContext, type ToolDefinition } from './types.js';
