import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiKeys } from '../admission/index.js';
import { ConfigError, UnauthorizedError } from '../errors.js';
import type { App } from './app.js';
import { sendError } from './errors.js';

/** The key a request presents: `Authorization: Bearer <key>`, or `x-api-key: <key>`. */
export function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const header = headers.authorization;
  if (typeof header === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match !== null) return match[1];
  }
  const alternative = headers['x-api-key'];
  return typeof alternative === 'string' && alternative !== '' ? alternative : undefined;
}

/**
 * Authenticates every `/v1/` request once any API key exists: the key maps to a tenant, user,
 * agent allow-list and limits (`request.identity`). Without keys the server runs open as the
 * default tenant (and `serve` refuses a non-loopback address unless told otherwise).
 */
export function installAuth(app: App, keys: ApiKeys): void {
  app.decorateRequest('identity', undefined);
  app.addHook('onRequest', (request, reply, done) => {
    if (!request.url.startsWith('/v1/')) return done();
    const enabled = keys.enabled();
    if (enabled === false) return done();
    if (enabled === true) return authenticate(request, reply, keys, done);
    enabled.then(
      (on) => (on ? authenticate(request, reply, keys, done) : done()),
      (err: Error) => done(err),
    );
  });
}

function authenticate(
  request: FastifyRequest,
  reply: FastifyReply,
  keys: ApiKeys,
  done: (err?: Error) => void,
): void {
  const key = presentedKey(request.headers);
  if (key === undefined) {
    reply.header('www-authenticate', 'Bearer');
    sendError(reply, new UnauthorizedError('an API key is required: send Authorization: Bearer <key>'));
    return;
  }
  keys.identify(key).then(
    (identity) => {
      if (identity === undefined) {
        reply.header('www-authenticate', 'Bearer error="invalid_token"');
        sendError(reply, new UnauthorizedError('unknown or revoked API key'));
        return;
      }
      request.identity = identity;
      done();
    },
    (err: Error) => done(err),
  );
}

/** True for loopback addresses (127.0.0.0/8, ::1) and `localhost`. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '0:0:0:0:0:0:0:1';
}

/**
 * Serving without keys is only safe on loopback: on any other address it needs an explicit
 * `auth.allow_unauthenticated` (or `--allow-unauthenticated`).
 */
export async function assertSafeBinding(
  host: string,
  keys: ApiKeys,
  allowUnauthenticated: boolean,
): Promise<void> {
  if (isLoopback(host) || allowUnauthenticated || (await keys.enabled())) return;
  throw new ConfigError(
    `refusing to serve without API keys on ${host}: create one with \`agentd keys create --tenant <name>\`, ` +
      'or pass --allow-unauthenticated (auth.allow_unauthenticated: true) if something in front of agentd authenticates',
  );
}
