import Type from 'typebox';
import { request } from 'undici';
import { ToolArgumentsError, ToolFailedError, ToolForbiddenError } from '../../errors.js';
import { defineTool } from '../types.js';

export interface HttpFetchOptions {
  /** Hosts the tool may reach: exact names, or `*.example.com` for subdomains. Empty refuses all. */
  allowedHosts: string[];
  maxBytes: number;
  timeoutMs: number;
}

/** True when `host` is on the allow-list (exact, or a subdomain of a `*.` entry). */
export function hostAllowed(host: string, allowed: readonly string[]): boolean {
  const name = host.toLowerCase();
  for (const entry of allowed) {
    const rule = entry.toLowerCase();
    if (rule.startsWith('*.')) {
      if (name.endsWith(rule.slice(1)) && name.length > rule.length - 1) return true;
    } else if (name === rule) return true;
  }
  return false;
}

/**
 * `http_fetch`: GET or HEAD a URL on an allowed host. Redirects are returned, not followed (a
 * redirect could leave the allow-list); the body is read up to `maxBytes` and marked truncated.
 */
export function createHttpFetch(options: HttpFetchOptions) {
  return defineTool({
    name: 'http_fetch',
    description: 'Fetch a web page or API over HTTP(S) with GET or HEAD. Only some hosts are allowed.',
    parameters: Type.Object(
      {
        url: Type.String({ maxLength: 2048, description: 'absolute http(s) URL' }),
        method: Type.Optional(Type.Union([Type.Literal('GET'), Type.Literal('HEAD')])),
        headers: Type.Optional(Type.Record(Type.String(), Type.String({ maxLength: 1024 }))),
      },
      { additionalProperties: false },
    ),
    timeoutMs: options.timeoutMs,
    handler: async ({ url, method, headers }, ctx) => {
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        throw new ToolArgumentsError(`"${url}" is not an absolute URL`);
      }
      if (target.protocol !== 'http:' && target.protocol !== 'https:') {
        throw new ToolArgumentsError(`only http and https URLs can be fetched, not ${target.protocol}`);
      }
      if (!hostAllowed(target.hostname, options.allowedHosts)) {
        throw new ToolForbiddenError(`host "${target.hostname}" is not in tools.http_fetch.allowed_hosts`);
      }
      let response: Awaited<ReturnType<typeof request>>;
      try {
        response = await request(target, {
          method: method ?? 'GET',
          headers: { 'user-agent': 'agentd-http-fetch', ...headers },
          signal: ctx.signal,
          headersTimeout: options.timeoutMs,
          bodyTimeout: options.timeoutMs,
        });
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        throw new ToolFailedError(`fetching ${target.href} failed: ${(err as Error).message}`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let truncated = false;
      for await (const chunk of response.body) {
        const buf = chunk as Buffer;
        if (size + buf.length > options.maxBytes) {
          chunks.push(buf.subarray(0, options.maxBytes - size));
          truncated = true;
          response.body.destroy();
          break;
        }
        chunks.push(buf);
        size += buf.length;
      }
      const location = response.headers.location;
      return {
        status: response.statusCode,
        content_type: response.headers['content-type'] ?? null,
        ...(location === undefined ? {} : { location }),
        body: Buffer.concat(chunks).toString('utf8'),
        truncated,
      };
    },
  });
}
