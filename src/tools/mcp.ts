import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { Static } from 'typebox';
import type { AgentConfig } from '../config/index.js';
import type { McpServerSchema } from '../config/interfaces-schema.js';
import { ConfigError, ToolFailedError } from '../errors.js';
import type { JsonSchema } from '../llm/index.js';
import type { ToolDefinition } from './types.js';

export type McpServerConfig = Static<typeof McpServerSchema>;

/** Tools from the agents' MCP servers, which agents offer them, and how to disconnect. */
export interface McpTools {
  tools: ToolDefinition[];
  /** Tool names per agent, to add to the agent's own. */
  byAgent: Map<string, string[]>;
  close(): Promise<void>;
}

const VERSION = '1';

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
export async function connectMcpServers(agents: Record<string, AgentConfig>): Promise<McpTools> {
  const clients = new Map<string, { client: Client; config: McpServerConfig; tools: string[] }>();
  const byAgent = new Map<string, string[]>();
  const tools: ToolDefinition[] = [];
  const close = async (): Promise<void> => {
    await Promise.all([...clients.values()].map(({ client }) => client.close().catch(() => {})));
  };
  try {
    for (const [agent, config] of Object.entries(agents)) {
      const names: string[] = [];
      for (const [server, serverConfig] of Object.entries(config.mcp_servers)) {
        let connected = clients.get(server);
        if (connected === undefined) {
          const client = await connect(`agents.${agent}.mcp_servers.${server}`, serverConfig);
          const offered: string[] = [];
          for (const tool of await listTools(client)) {
            if (serverConfig.tools !== undefined && !serverConfig.tools.includes(tool.name)) continue;
            const definition = wrapTool(client, server, tool, serverConfig.timeout_ms);
            tools.push(definition);
            offered.push(definition.name);
          }
          connected = { client, config: serverConfig, tools: offered };
          clients.set(server, connected);
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

async function connect(where: string, config: McpServerConfig): Promise<Client> {
  let transport: Transport;
  if (config.transport === 'stdio') {
    if (config.command === undefined) throw new ConfigError(`${where}.command is required for stdio`);
    transport = new StdioClientTransport({
      command: config.command,
      args: config.args ?? [],
      env:
        config.env === undefined ? undefined : { ...(process.env as Record<string, string>), ...config.env },
      cwd: config.cwd,
      stderr: 'inherit',
    });
  } else {
    if (config.url === undefined) throw new ConfigError(`${where}.url is required for http`);
    transport = new StreamableHTTPClientTransport(new URL(config.url), {
      requestInit: config.headers === undefined ? undefined : { headers: config.headers },
    });
  }
  const client = new Client({ name: 'agentd', version: VERSION });
  const connectTimeoutMs = config.connect_timeout_ms ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(transport),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${connectTimeoutMs} ms`)),
          connectTimeoutMs,
        );
      }),
    ]);
  } catch (err) {
    await client.close().catch(() => {});
    throw new ConfigError(`${where}: cannot connect to the MCP server: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
  }
  return client;
}

interface ListedTool {
  name: string;
  description?: string | undefined;
  inputSchema: Record<string, unknown>;
}

async function listTools(client: Client): Promise<ListedTool[]> {
  const listed: ListedTool[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listTools(cursor === undefined ? {} : { cursor });
    for (const tool of page.tools) listed.push(tool as ListedTool);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return listed;
}

function wrapTool(
  client: Client,
  server: string,
  tool: ListedTool,
  timeoutMs: number | undefined,
): ToolDefinition {
  // `$schema` may name a draft the validator does not load; the schema itself is plain JSON Schema.
  const { $schema: _dialect, ...schema } = tool.inputSchema;
  const parameters = { type: 'object', properties: {}, ...schema } as JsonSchema;
  return {
    name: mcpToolName(server, tool.name),
    description: tool.description ?? `${tool.name} (MCP server ${server})`,
    parameters,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    async handler(args, ctx) {
      // The executor's deadline aborts the signal; MCP's own request timeout is only a backstop.
      const result = await client.callTool({ name: tool.name, arguments: args }, undefined, {
        signal: ctx.signal,
        timeout: 24 * 60 * 60 * 1000,
      });
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
