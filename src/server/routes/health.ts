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
        summary: 'Readiness: storage reachable and not draining',
        tags: ['health'],
        response: { 200: HealthSchema, 503: HealthSchema },
      },
    },
    async (_request, reply) => {
      const storage = await runtime.store.ping();
      const report = { ...runtime.health(), checks: { storage: storage ? 'ok' : 'unreachable' } };
      const ready = storage && !runtime.draining;
      return reply.code(ready ? 200 : 503).send(report);
    },
  );
}
