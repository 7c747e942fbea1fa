import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyInstance,
  LogController,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import type { Logger } from '../observability/index.js';
import type { Runtime } from '../runtime/index.js';
import { VERSION } from '../runtime/index.js';
import { installErrorHandlers } from './errors.js';
import { agentRoutes } from './routes/agents.js';
import { healthRoutes } from './routes/health.js';
import { sessionRoutes } from './routes/sessions.js';
import { taskRoutes } from './routes/tasks.js';

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  Logger,
  TypeBoxTypeProvider
>;

/** Builds the HTTP API over a runtime (not yet listening). */
export async function buildServer(runtime: Runtime): Promise<App> {
  const app = Fastify({
    loggerInstance: runtime.log.child({ component: 'http' }),
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: runtime.config.server.body_limit_bytes,
    keepAliveTimeout: 72_000,
    return503OnClosing: true,
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

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
        { name: 'health', description: 'Liveness and readiness' },
      ],
    },
  });
  installErrorHandlers(app, runtime.log);
  taskRoutes(app, runtime);
  agentRoutes(app, runtime);
  sessionRoutes(app, runtime);
  healthRoutes(app, runtime);
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
