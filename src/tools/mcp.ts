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
  /** Tool names per agent, to add to the agent's own; kept current as servers change their tools. */
  byAgent: Map<string, string[]>;
  /** Calls `listener` after a server's tool list changed (applied to `byAgent` already). */
  onToolsChanged(listener: (change: McpToolsChange) => void): void;
  close(): Promise<void>;
}

/** A server's new tool list: every tool it now offers, the names it dropped, the agents that use it. */
export interface McpToolsChange {
  server: string;
  tools: ToolDefinition[];
  removed: string[];
  agents: string[];
}

interface ConnectedServer {
  connection: McpConnection;
  config: McpServerConfig;
  /** Names of the tools offered now, in the server's order. */
  tools: string[];
  /** Agents that declare this server. */
  agents: string[];
  /** The refresh in progress, so that notifications arriving meanwhile list once more, in order. */
  refreshing: Promise<void>;
}

/** An MCP tool's name in agentd: `<server>__<tool>`, kept to the 64 characters models accept. */
export function mcpToolName(server: string, tool: string): string {
  return `${server}__${tool.replace(/[^A-Za-z0-9_-]/g, '_')}`.slice(0, 64);
}

/**
 * Connects to every MCP server the agents declare (one connection per server name, shared by the
 * agents that name it), lists their tools and wraps each as an agentd tool. Calls then go through
 * the ToolExecutor like any tool: allow-list, argument validation against the server's schema,
 * per-tool breaker, timeout (cancelling the MCP request), metrics. A server that announces a new
 * tool list (`notifications/tools/list_changed`), or comes back after a reconnection, is listed
 * again and the change reported to `onToolsChanged`.
 */
export async function connectMcpServers(
  agents: Record<string, AgentConfig>,
  log?: Logger,
): Promise<McpTools> {
  const servers = new Map<string, ConnectedServer>();
  const serversOf = new Map<string, string[]>();
  const byAgent = new Map<string, string[]>();
  const tools: ToolDefinition[] = [];
  let listener: ((change: McpToolsChange) => void) | undefined;
  const close = async (): Promise<void> => {
    await Promise.all([...servers.values()].map(({ connection }) => connection.close()));
  };
  const offered = (agent: string): string[] =>
    (serversOf.get(agent) ?? []).flatMap((server) => servers.get(server)!.tools);

  const refresh = async (entry: ConnectedServer): Promise<void> => {
    let definitions: ToolDefinition[];
    try {
      definitions = wrapTools(entry.connection, entry.config, await listTools(entry.connection));
    } catch (err) {
      log?.warn({ err, mcp_server: entry.connection.server }, 'listing the MCP server tools failed');
      return;
    }
    const names = definitions.map((tool) => tool.name);
    const removed = entry.tools.filter((name) => !names.includes(name));
    entry.tools = names;
    for (const agent of entry.agents) byAgent.set(agent, offered(agent));
    log?.info(
      { mcp_server: entry.connection.server, tools: names, removed },
      'MCP server tools listed again',
    );
    try {
      listener?.({ server: entry.connection.server, tools: definitions, removed, agents: entry.agents });
    } catch (err) {
      log?.error({ err, mcp_server: entry.connection.server }, "applying the MCP server's new tools failed");
    }
  };

  try {
    for (const [agent, config] of Object.entries(agents)) {
      for (const [server, serverConfig] of Object.entries(config.mcp_servers)) {
        let entry = servers.get(server);
        if (entry === undefined) {
          const connection = await McpConnection.open(
            server,
            `agents.${agent}.mcp_servers.${server}`,
            serverConfig,
            log,
          );
          const definitions = wrapTools(connection, serverConfig, await listTools(connection));
          tools.push(...definitions);
          const created: ConnectedServer = {
            connection,
            config: serverConfig,
            tools: definitions.map((tool) => tool.name),
            agents: [],
            refreshing: Promise.resolve(),
          };
          connection.watchTools(() => {
            created.refreshing = created.refreshing.then(() => refresh(created));
          });
          servers.set(server, created);
          entry = created;
        } else if (JSON.stringify(entry.config) !== JSON.stringify(serverConfig)) {
          throw new ConfigError(
            `agents.${agent}.mcp_servers.${server}: another agent declares MCP server "${server}" differently`,
          );
        }
        entry.agents.push(agent);
        serversOf.set(agent, [...(serversOf.get(agent) ?? []), server]);
      }
      const names = offered(agent);
      if (names.length > 0) byAgent.set(agent, names);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    tools,
    byAgent,
    onToolsChanged(callback) {
      listener = callback;
    },
    close,
  };
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

/** The listed tools the server's config lets through, as agentd tools. */
function wrapTools(
  connection: McpConnection,
  config: McpServerConfig,
  listed: ListedTool[],
): ToolDefinition[] {
  return listed
    .filter((tool) => config.tools === undefined || config.tools.includes(tool.name))
    .map((tool) => wrapTool(connection, tool, config.timeout_ms));
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
