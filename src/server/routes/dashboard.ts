import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DashboardUnavailableError, NotFoundError } from '../../errors.js';
import type { Logger } from '../../observability/index.js';
import type { App } from '../app.js';
import { sendError } from '../errors.js';

/** The page talks to this origin only; nothing may frame it (clickjacking) or load from elsewhere. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** One file of the page, held in memory with its validator. */
interface Asset {
  body: Buffer;
  etag: string;
  contentType: string;
}

/** The page's files, or why they could not be read. */
export type DashboardAssets = { files: Map<string, Asset> } | { problem: string };

/**
 * Where the page's files live: beside this module's folder (`src/server/dashboard/` when run from
 * source, `dist/server/dashboard/` once built and copied), else the source tree of a checkout
 * whose `dist/` was built without the copy step.
 */
function candidateDirectories(): string[] {
  const here = fileURLToPath(new URL('../dashboard/', import.meta.url));
  const source = fileURLToPath(new URL('../../../src/server/dashboard/', import.meta.url));
  return here === source ? [here] : [here, source];
}

/** Reads the page's files once, at start-up: requests are then served from memory. */
export function loadDashboardAssets(
  directories: readonly string[] = candidateDirectories(),
): DashboardAssets {
  const directory = directories.find((dir) => existsSync(join(dir, 'index.html')));
  if (directory === undefined) {
    return {
      problem: `dashboard files not found (looked for index.html in ${directories.join(', ')}); run \`npm run build\``,
    };
  }
  const files = new Map<string, Asset>();
  for (const name of readdirSync(directory)) {
    const contentType = CONTENT_TYPES[extname(name)];
    if (contentType === undefined) continue;
    const body = readFileSync(join(directory, name));
    const hash = createHash('sha256').update(body).digest('base64url').slice(0, 22);
    files.set(name, { body, etag: `"${hash}"`, contentType });
  }
  return { files };
}

/** True when `If-None-Match` names this ETag (weak or strong, in a list, or `*`). */
function notModified(request: FastifyRequest, etag: string): boolean {
  const header = request.headers['if-none-match'];
  if (header === undefined) return false;
  for (const tag of header.split(',')) {
    const value = tag.trim();
    if (value === '*' || value === etag || value === `W/${etag}`) return true;
  }
  return false;
}

function serve(request: FastifyRequest, reply: FastifyReply, asset: Asset): FastifyReply {
  reply
    .header('etag', asset.etag)
    .header('cache-control', 'no-cache')
    .header('content-security-policy', CONTENT_SECURITY_POLICY)
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer');
  if (notModified(request, asset.etag)) return reply.code(304).send();
  return reply.type(asset.contentType).send(asset.body);
}

/**
 * `GET /`: the built-in dashboard (plain HTML, CSS and browser modules under `/dashboard/`). It
 * only reads the public API, so it needs no routes or permissions of its own.
 */
export function dashboardRoutes(
  app: App,
  log: Logger,
  assets: DashboardAssets = loadDashboardAssets(),
): void {
  if ('problem' in assets) log.warn({ problem: assets.problem }, 'dashboard unavailable');
  const unavailable = (reply: FastifyReply, problem: string) =>
    sendError(reply, new DashboardUnavailableError(`the dashboard is unavailable: ${problem}`));

  app.get('/', { schema: { hide: true } }, async (request, reply) => {
    if ('problem' in assets) return unavailable(reply, assets.problem);
    const page = assets.files.get('index.html');
    if (page === undefined) return unavailable(reply, 'index.html is missing');
    return serve(request, reply, page);
  });

  app.get<{ Params: { file: string } }>(
    '/dashboard/:file',
    { schema: { hide: true } },
    async (request, reply) => {
      if ('problem' in assets) return unavailable(reply, assets.problem);
      const asset = assets.files.get(request.params.file);
      if (asset === undefined) {
        return sendError(reply, new NotFoundError(`no dashboard file "${request.params.file}"`));
      }
      return serve(request, reply, asset);
    },
  );
}
