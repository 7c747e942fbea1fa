import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import Fastify, {
  type FastifyInstance,
  LogController,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import type { ChatCompletionBody } from '../gateway/index.js';
import type { Logger } from '../observability/index.js';
import type { Runtime } from '../runtime/index.js';
import { VERSION } from '../runtime/index.js';
import { installAuth } from './auth.js';
import { ChatCompletions, ChatRoute } from './chat-completions.js';
import { DirectRoutes } from './direct-routes.js';
import { installErrorHandlers } from './errors.js';
import { lazyRequestLogger } from './request-logger.js';
import { agentRoutes } from './routes/agents.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { healthRoutes } from './routes/health.js';
import { memoryRoutes } from './routes/memories.js';
import { metricsRoutes } from './routes/metrics.js';
import { openAIRoutes } from './routes/openai.js';
import { sessionRoutes } from './routes/sessions.js';
import { taskRoutes } from './routes/tasks.js';
import { toolRoutes } from './routes/tools.js';
import { RunRoute } from './run-route.js';
import { ChatCompletionRequest, RunAgentBody, type RunAgentRequest } from './schemas.js';
import { installWebSocket } from './ws.js';

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  Logger,
  TypeBoxTypeProvider
>;

/** Logs a random share of requests (`observability.request_log_sample_rate`); none by default. */
function sampledRequestLogging(rate: number): boolean | (() => boolean) {
  if (rate <= 0) return true;
  if (rate >= 1) return false;
  return () => Math.random() >= rate;
}

/** Builds the HTTP API over a runtime (not yet listening). */
export async function buildServer(runtime: Runtime): Promise<App> {
  // Bodies are validated strictly (42 is not "42", unknown fields are errors); query strings and
  // path parameters arrive as text and are coerced to the declared types.
  const options = { removeAdditional: false, useDefaults: true, allErrors: false, strict: false } as const;
  const strict = new Ajv({ ...options, coerceTypes: false });
  const coercing = new Ajv({ ...options, coerceTypes: 'array' });
  // Formats (date-time, uri, …) are checked, not ignored.
  for (const ajv of [strict, coercing]) addFormats.default(ajv);
  const bodyLimit = runtime.config.server.body_limit_bytes;
  const sampleRate = runtime.config.observability.request_log_sample_rate;
  // The server is made here so that the hot routes (a one-call run, a chat completion) can be
  // served before Fastify (src/server/direct-routes.ts); Fastify gets every other request, with
  // its usual server settings.
  const server = createServer({ requestTimeout: 0 });
  server.keepAliveTimeout = 72_000;
  server.setTimeout(0);
  let fastifyHandler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const app = Fastify({
    loggerInstance: runtime.log.child({ component: 'http' }),
    logController: new LogController({ disableRequestLogging: sampledRequestLogging(sampleRate) }),
    bodyLimit,
    return503OnClosing: true,
    serverFactory: (handler) => {
      fastifyHandler = handler;
      return server;
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  // Request logging is Fastify's: while any request may be logged, every request goes through it.
  const completions = new ChatCompletions(runtime);
  if (sampleRate <= 0) {
    const direct = new DirectRoutes({
      keys: runtime.keys,
      log: runtime.log,
      bodyLimit,
      parseJson: app.getDefaultJsonParser('error', 'error'),
      fallback: fastifyHandler!,
      routes: [
        new ChatRoute(completions, strict.compile<ChatCompletionBody>(ChatCompletionRequest)),
        new RunRoute(runtime, strict.compile<RunAgentRequest>(RunAgentBody)),
      ],
    });
    server.on('request', direct.handle);
    app.addHook('preClose', (done) => {
      direct.close();
      done();
    });
  } else {
    server.on('request', fastifyHandler!);
  }
  app.setChildLoggerFactory(lazyRequestLogger);
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? strict : coercing).compile(schema),
  );
  // Only JSON bodies are accepted: anything else is a 415, not a string to validate.
  app.removeContentTypeParser('text/plain');

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'agentd',
        version: VERSION,
        description:
          'A high-performance runtime for AI agents. Errors are `{ error: { code, message, retryable, retry_after_ms? } }`.',
      },
      tags: [
        { name: 'tasks', description: 'Asynchronous agent tasks' },
        { name: 'agents', description: 'Agents and synchronous runs' },
        { name: 'sessions', description: 'Conversation history' },
        { name: 'memories', description: 'Long-term memory: CRUD, search, history' },
        { name: 'tools', description: 'Tools run directly, without a model' },
        { name: 'health', description: 'Liveness and readiness' },
        { name: 'openai', description: 'OpenAI-compatible API (gateway and agent mode)' },
      ],
    },
  });
  installErrorHandlers(app, runtime.log);
  installAuth(app, runtime.keys);
  taskRoutes(app, runtime);
  agentRoutes(app, runtime);
  sessionRoutes(app, runtime);
  if (runtime.memory !== undefined) memoryRoutes(app, runtime.memory);
  toolRoutes(app, runtime);
  openAIRoutes(app, runtime, completions);
  installWebSocket(app, runtime);
  healthRoutes(app, runtime);
  if (runtime.config.observability.metrics.enabled) metricsRoutes(app, runtime);
  if (runtime.config.server.dashboard) dashboardRoutes(app, runtime.log);
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
