import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { type Identity, OPEN_IDENTITY } from '../admission/index.js';
import {
  type AgentdError,
  NotFoundError,
  ShuttingDownError,
  toAgentdError,
  UnauthorizedError,
} from '../errors.js';
import type { Runtime } from '../runtime/index.js';
import type { App } from './app.js';
import { PING_TIMEOUT_CLOSE, TaskSocket } from './ws-session.js';

export const WEBSOCKET_PATH = '/v1/ws';

/**
 * Serves `GET /v1/ws` on the HTTP server: the upgrade is authenticated with the same API keys as
 * every `/v1/` route (an `Authorization: Bearer` header, or `?api_key=` for browsers, which cannot
 * set headers), then each connection is a TaskSocket. One timer pings every connection.
 */
export function installWebSocket(app: App, runtime: Runtime): void {
  const config = runtime.config.server.websocket;
  if (!config.enabled) return;
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.max_message_bytes });
  const sockets = new Set<TaskSocket>();
  const limits = { maxBufferedBytes: config.max_buffered_bytes, maxSubscriptions: config.max_subscriptions };

  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname !== WEBSOCKET_PATH) {
      refuse(socket, new NotFoundError(`no WebSocket endpoint at ${url.pathname}; use ${WEBSOCKET_PATH}`));
      return;
    }
    if (runtime.draining) {
      refuse(socket, new ShuttingDownError('agentd is shutting down', { retryAfterMs: 5000 }));
      return;
    }
    authenticate(runtime, request, url).then(
      (identity) => {
        wss.handleUpgrade(request, socket, head, (ws) => {
          const session = new TaskSocket(runtime, ws, identity, limits);
          sockets.add(session);
          session.onClosed = () => sockets.delete(session);
        });
      },
      (err: unknown) => refuse(socket, toAgentdError(err)),
    );
  });

  runtime.metrics.gauge('agentd_websocket_connections', 'Open WebSocket connections on /v1/ws', [], () => [
    [[], sockets.size],
  ]);

  const sweep = setInterval(() => {
    for (const session of sockets) {
      if (session.awaitingPong) {
        session.close(PING_TIMEOUT_CLOSE, 'no pong since the last ping');
        continue;
      }
      session.awaitingPong = true;
      session.ping();
    }
  }, config.ping_interval_ms);
  sweep.unref();

  app.addHook('onClose', async () => {
    clearInterval(sweep);
    for (const session of sockets) session.close(1001, 'agentd is shutting down');
    wss.close();
  });
}

async function authenticate(runtime: Runtime, request: IncomingMessage, url: URL): Promise<Identity> {
  if (!(await runtime.keys.enabled())) return OPEN_IDENTITY;
  const key =
    bearer(request.headers.authorization) ??
    headerKey(request.headers['x-api-key']) ??
    url.searchParams.get('api_key') ??
    undefined;
  if (key === undefined)
    throw new UnauthorizedError('an API key is required: send Authorization: Bearer <key>');
  const identity = await runtime.keys.identify(key);
  if (identity === undefined) throw new UnauthorizedError('unknown or revoked API key');
  return identity;
}

function bearer(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match === null ? undefined : match[1];
}

function headerKey(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Answers a refused upgrade with the error's HTTP status and envelope, and closes the socket. */
function refuse(socket: Duplex, error: AgentdError): void {
  const body = JSON.stringify({ error: error.toBody() });
  const extra = error.status === 401 ? 'www-authenticate: Bearer\r\n' : '';
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\n${extra}` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
