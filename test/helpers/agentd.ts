import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import type { AgentOptions } from '../../src/agent/index.js';
import { createLogger } from '../../src/observability/index.js';
import { Runtime } from '../../src/runtime/index.js';
import { type App, buildServer } from '../../src/server/index.js';
import type { ToolDefinition } from '../../src/tools/index.js';

export interface TestAgentd {
  runtime: Runtime;
  app: App;
  url: string;
  dbPath: string;
  close(): Promise<void>;
}

export interface StartOptions {
  config?: Record<string, unknown>;
  agents?: AgentOptions[];
  tools?: ToolDefinition<never, unknown>[];
  /** Reuse a database file (to test restarts); a fresh temporary one otherwise. */
  dbPath?: string;
  env?: NodeJS.ProcessEnv;
  /** Called for every request that reaches Fastify (the direct routes answer without it). */
  onFastifyRequest?: (url: string) => void;
}

/**
 * Config that points every tier at one model, `key`, served by the test's mock model at `mockUrl`
 * (the model's name on the wire is the key unless `name` is given).
 */
export function oneMockModel(mockUrl: string, key = 'm', name = key === 'm' ? 'mock' : key) {
  return {
    providers: { mock: { type: 'mock', base_url: mockUrl } },
    models: { [key]: { provider: 'mock', name } },
    tiers: { small: [key], medium: [key], large: [key] },
  };
}

/** A temporary directory removed by the returned function. */
export function tempDir(prefix = 'agentd-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * Starts a runtime and its HTTP server on a free loopback port, with a private SQLite file and
 * an empty environment (so a developer's OPENAI_API_KEY never leaks into tests).
 */
export async function startAgentd(options: StartOptions = {}): Promise<TestAgentd> {
  const dir = options.dbPath === undefined ? tempDir() : undefined;
  const dbPath = options.dbPath ?? join(dir!.path, 'agentd.db');
  const limits = options.config?.limits as Record<string, unknown> | undefined;
  const config = {
    ...options.config,
    storage: { path: dbPath },
    server: { port: 0, ...(options.config?.server as Record<string, unknown> | undefined) },
    // The resource guard refuses work when this process's event loop lags; on a loaded machine a
    // test process can stall for a second, so tests that do not test the guard never trip it.
    limits: { ...limits, resource: limits?.resource ?? { max_event_loop_lag_ms: 60_000 } },
  };
  const runtime = await Runtime.create({
    config,
    env: options.env ?? {},
    agents: options.agents,
    tools: options.tools,
    logger: createLogger({ level: 'silent' }),
  });
  const app = await buildServer(runtime);
  const onFastifyRequest = options.onFastifyRequest;
  if (onFastifyRequest) app.addHook('onRequest', async (request) => onFastifyRequest(request.url));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  let closed = false;
  return {
    runtime,
    app,
    url,
    dbPath,
    async close() {
      if (closed) return;
      closed = true;
      await runtime.close({ drainMs: 0 });
      await app.close();
      dir?.remove();
    },
  };
}

export interface JsonResponse<T = any> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

/** Sends a JSON request and parses the JSON answer. */
export async function call<T = any>(
  base: string,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse<T>> {
  const response = await request(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.body.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // Not JSON: the raw text is returned.
  }
  return { status: response.statusCode, headers: response.headers, body: parsed as T };
}

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: any;
}

/** Reads an SSE response to its end (or until `until` returns true) and returns the events. */
export async function readSse(
  url: string,
  options: {
    headers?: Record<string, string>;
    method?: 'GET' | 'POST';
    body?: unknown;
    until?: (e: SseEvent) => boolean;
  } = {},
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  events: SseEvent[];
  comments: number;
}> {
  const controller = new AbortController();
  const response = await request(url, {
    method: options.method ?? 'GET',
    headers:
      options.body === undefined
        ? options.headers
        : { 'content-type': 'application/json', ...options.headers },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: controller.signal,
  });
  const events: SseEvent[] = [];
  let comments = 0;
  let buffer = '';
  try {
    for await (const chunk of response.body) {
      buffer += chunk.toString();
      let end = buffer.indexOf('\n\n');
      while (end !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
        if (block.startsWith(':')) {
          comments++;
          continue;
        }
        const event: SseEvent = { id: undefined, event: 'message', data: undefined };
        const data: string[] = [];
        for (const line of block.split('\n')) {
          const colon = line.indexOf(':');
          const field = line.slice(0, colon);
          const value = line.slice(colon + 1).replace(/^ /, '');
          if (field === 'id') event.id = value;
          else if (field === 'event') event.event = value;
          else if (field === 'data') data.push(value);
        }
        event.data = data.length === 0 ? undefined : JSON.parse(data.join('\n'));
        events.push(event);
        if (options.until?.(event)) {
          controller.abort();
          return { status: response.statusCode, headers: response.headers, events, comments };
        }
      }
    }
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  }
  return { status: response.statusCode, headers: response.headers, events, comments };
}
