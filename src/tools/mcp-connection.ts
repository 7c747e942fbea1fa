import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Static } from 'typebox';
import type { McpServerSchema } from '../config/interfaces-schema.js';
import { ConfigError, ToolUnavailableError } from '../errors.js';
import type { Logger } from '../observability/index.js';

export type McpServerConfig = Static<typeof McpServerSchema>;

const VERSION = '1';
/** Reconnection backoff: doubling from the first delay up to the cap, with jitter. */
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 30_000;

/** A tool call's result as the MCP client returns it. */
export type McpCallResult = Awaited<ReturnType<Client['callTool']>>;

/**
 * One MCP server's connection, kept up for the life of the runtime: when the server goes away
 * (its process exits, its HTTP endpoint stops answering or forgets the session), calls in flight
 * fail with `AGENTD_TOOL_UNAVAILABLE`, calls made meanwhile fail fast the same way, and the
 * connection is re-established in the background with exponential backoff (a new process for
 * stdio, a new session for HTTP). Tool breakers see the failures and close again after it.
 */
export class McpConnection {
  readonly server: string;
  readonly #where: string;
  readonly #config: McpServerConfig;
  readonly #log: Logger | undefined;
  #client: Client | undefined;
  #closed = false;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #lastError = '';
  #toolsChanged: (() => void) | undefined;

  private constructor(server: string, where: string, config: McpServerConfig, log: Logger | undefined) {
    this.server = server;
    this.#where = where;
    this.#config = config;
    this.#log = log;
  }

  /** Connects for the first time; a server that cannot be reached at start is a configuration error. */
  static async open(
    server: string,
    where: string,
    config: McpServerConfig,
    log: Logger | undefined,
  ): Promise<McpConnection> {
    const connection = new McpConnection(server, where, config, log);
    try {
      connection.#adopt(await connection.#connect());
    } catch (err) {
      throw new ConfigError(`${where}: cannot connect to the MCP server: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return connection;
  }

  /** True while a session is up. */
  get connected(): boolean {
    return this.#client !== undefined;
  }

  /** The connected client (for listing tools at start). */
  get client(): Client {
    if (this.#client === undefined) throw this.#unavailable('is not connected');
    return this.#client;
  }

  /**
   * Calls `listener` when the server's tools may have changed: it sent `notifications/tools/list_changed`,
   * or the connection was re-established (a restarted server may serve other tools).
   */
  watchTools(listener: () => void): void {
    this.#toolsChanged = listener;
  }

  /** Calls a tool; a lost connection is `AGENTD_TOOL_UNAVAILABLE` (retryable), never a hang. */
  async callTool(name: string, args: Record<string, unknown>, signal: AbortSignal): Promise<McpCallResult> {
    const client = this.#client;
    if (client === undefined) throw this.#unavailable(`is disconnected (${this.#lastError}); reconnecting`);
    try {
      // The executor's deadline aborts the signal; MCP's own request timeout is only a backstop.
      return await client.callTool({ name, arguments: args }, undefined, {
        signal,
        timeout: 24 * 60 * 60 * 1000,
      });
    } catch (err) {
      if (signal.aborted || !isConnectionLoss(err)) throw err;
      this.#lost(client, (err as Error).message);
      throw this.#unavailable(
        `went away during the call to ${name} (${(err as Error).message}); reconnecting`,
      );
    }
  }

  /** Disconnects for good (no reconnection). */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = undefined;
    await client?.close().catch(() => {});
  }

  #adopt(client: Client): void {
    this.#client = client;
    this.#failures = 0;
    client.onclose = () => this.#lost(client, 'the connection closed');
  }

  /** The session is gone: forget it and schedule a reconnection (once per lost session). */
  #lost(client: Client, reason: string): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    this.#lastError = reason;
    client.onclose = undefined;
    void client.close().catch(() => {});
    if (this.#closed) return;
    this.#log?.warn({ mcp_server: this.server, reason }, 'MCP server disconnected; reconnecting');
    this.#schedule();
  }

  #schedule(): void {
    const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this.#failures);
    const delay = base / 2 + Math.random() * (base / 2);
    this.#timer = setTimeout(() => void this.#reconnect(), delay);
    this.#timer.unref();
  }

  async #reconnect(): Promise<void> {
    if (this.#closed) return;
    let client: Client;
    try {
      client = await this.#connect();
    } catch (err) {
      this.#failures++;
      this.#lastError = (err as Error).message;
      this.#log?.warn(
        { mcp_server: this.server, attempt: this.#failures, reason: this.#lastError },
        'MCP server reconnection failed; retrying',
      );
      this.#schedule();
      return;
    }
    if (this.#closed) {
      await client.close().catch(() => {});
      return;
    }
    const attempts = this.#failures + 1;
    this.#adopt(client);
    this.#log?.info({ mcp_server: this.server, attempts }, 'MCP server reconnected');
    this.#toolsChanged?.();
  }

  async #connect(): Promise<Client> {
    const config = this.#config;
    let transport: Transport;
    if (config.transport === 'stdio') {
      if (config.command === undefined) throw new ConfigError(`${this.#where}.command is required for stdio`);
      transport = new StdioClientTransport({
        command: config.command,
        args: config.args ?? [],
        env:
          config.env === undefined
            ? undefined
            : { ...(process.env as Record<string, string>), ...config.env },
        cwd: config.cwd,
        stderr: 'inherit',
      });
    } else {
      if (config.url === undefined) throw new ConfigError(`${this.#where}.url is required for http`);
      transport = new StreamableHTTPClientTransport(new URL(config.url), {
        requestInit: config.headers === undefined ? undefined : { headers: config.headers },
      });
    }
    const client = new Client(
      { name: 'agentd', version: VERSION },
      // Debounced by the SDK; agentd lists the tools itself (all pages) when told they changed.
      { listChanged: { tools: { autoRefresh: false, onChanged: () => this.#toolsChanged?.() } } },
    );
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
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return client;
  }

  #unavailable(what: string): InstanceType<typeof ToolUnavailableError> {
    return new ToolUnavailableError(`MCP server "${this.server}" ${what}`, {
      retryAfterMs: Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this.#failures),
      details: { server: this.server },
    });
  }
}

/** Errors that mean the session is gone (not a tool's own failure). */
function isConnectionLoss(err: unknown): boolean {
  if (err instanceof McpError) return err.code === ErrorCode.ConnectionClosed;
  // An HTTP error status from the endpoint (404: the session was forgotten, 5xx: it is down).
  if (err instanceof StreamableHTTPError) return true;
  // fetch's network failure (refused, reset), or a transport that was closed under the call.
  if (err instanceof TypeError) return true;
  const code = (err as { code?: unknown }).code;
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE';
}
