import type { Runtime } from '../../runtime/index.js';
import type { App } from '../app.js';
import { HealthSchema } from '../schemas.js';

export function healthRoutes(app: App, runtime: Runtime): void {
  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness: the process serves requests',
        tags: ['health'],
        response: { 200: HealthSchema },
      },
    },
    async () => runtime.health(),
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: storage and shared limits reachable, not draining or overloaded; breaker states',
        tags: ['health'],
        response: { 200: HealthSchema, 503: HealthSchema },
      },
    },
    async (_request, reply) => {
      const { ready, checks } = await runtime.readiness();
      return reply.code(ready ? 200 : 503).send({ ...runtime.health(), checks });
    },
  );
}
