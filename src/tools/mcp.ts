import type { AgentConfig } from '../config/index.js';
import { ConfigError, ToolFailedError } from '../errors.js';
import type { JsonSchema } from '../llm/index.js';
import type { Logger } from '../observability/index.js';
import { McpConnection, type McpServerConfig } from './mcp-connection.js';
import type { ToolDefinition } from './types.js';

export type { McpServerConfig };

/** Tools from the agents' MCP servers, which agents offer them, and how to disconnect. */
export interface McpTools {
  tools: ToolDefinition[];
  /** Tool names per agent, to add to the agent's own. */
  byAgent: Map<string, string[]>;
  close(): Promise<void>;
}

/** An MCP tool's name in agentd: `<server>__<tool>`, kept to the 64 characters models accept. */
export function mcpToolName(server: string, tool: string): string {
  return `${server}__${tool.replace(/[^A-Za-z0-9_-]/g, '_')}`.slice(0, 64);
}

/**
 * Connects to every MCP server the agents declare (one connection per server name, shared by the
 * agents that name it), lists their tools and wraps each as an agentd tool. Calls then go through
 * the ToolExecutor like any tool: allow-list, argument validation against the server's schema,
 * per-tool breaker, timeout (cancelling the MCP request), metrics.
 */
export async function connectMcpServers(
  agents: Record<string, AgentConfig>,
  log?: Logger,
): Promise<McpTools> {
  const clients = new Map<string, { connection: McpConnection; config: McpServerConfig; tools: string[] }>();
  const byAgent = new Map<string, string[]>();
  const tools: ToolDefinition[] = [];
  const close = async (): Promise<void> => {
    await Promise.all([...clients.values()].map(({ connection }) => connection.close()));
  };
  try {
    for (const [agent, config] of Object.entries(agents)) {
      const names: string[] = [];
      for (const [server, serverConfig] of Object.entries(config.mcp_servers)) {
        let connected = clients.get(server);
        if (connected === undefined) {
          const connection = await McpConnection.open(
            server,
            `agents.${agent}.mcp_servers.${server}`,
            serverConfig,
            log,
          );
          connected = { connection, config: serverConfig, tools: [] };
          clients.set(server, connected);
          for (const tool of await listTools(connection)) {
            if (serverConfig.tools !== undefined && !serverConfig.tools.includes(tool.name)) continue;
            const definition = wrapTool(connection, tool, serverConfig.timeout_ms);
            tools.push(definition);
            connected.tools.push(definition.name);
          }
        } else if (JSON.stringify(connected.config) !== JSON.stringify(serverConfig)) {
          throw new ConfigError(
            `agents.${agent}.mcp_servers.${server}: another agent declares MCP server "${server}" differently`,
          );
        }
        names.push(...connected.tools);
      }
      if (names.length > 0) byAgent.set(agent, names);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { tools, byAgent, close };
}

interface ListedTool {
  name: string;
  description?: string | undefined;
  inputSchema: Record<string, unknown>;
}

async function listTools(connection: McpConnection): Promise<ListedTool[]> {
  const listed: ListedTool[] = [];
  let cursor: string | undefined;
  do {
    const page = await connection.client.listTools(cursor === undefined ? {} : { cursor });
    for (const tool of page.tools) listed.push(tool as ListedTool);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return listed;
}

function wrapTool(
  connection: McpConnection,
  tool: ListedTool,
  timeoutMs: number | undefined,
): ToolDefinition {
  const server = connection.server;
  // `$schema` may name a draft the validator does not load; the schema itself is plain JSON Schema.
  const { $schema: _dialect, ...schema } = tool.inputSchema;
  const parameters = { type: 'object', properties: {}, ...schema } as JsonSchema;
  return {
    name: mcpToolName(server, tool.name),
    description: tool.description ?? `${tool.name} (MCP server ${server})`,
    parameters,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    async handler(args, ctx) {
      const result = await connection.callTool(tool.name, args, ctx.signal);
      const text = textOf(result.content);
      if (result.isError === true) {
        throw new ToolFailedError(`MCP tool ${server}/${tool.name} failed: ${text || 'no details'}`, {
          details: { server, tool: tool.name },
        });
      }
      if (result.structuredContent !== undefined) return result.structuredContent;
      return text;
    },
  };
}

function textOf(content: unknown): string {
  if (!Array.isArray(content)) return '';
  const parts: string[] = [];
  for (const item of content as { type?: string; text?: string }[]) {
    if (item.type === 'text' && typeof item.text === 'string') parts.push(item.text);
    else parts.push(JSON.stringify(item));
  }
  return parts.join('\n');
}
