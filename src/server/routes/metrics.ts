import type { Runtime } from '../../runtime/index.js';
import type { App } from '../app.js';

/** `GET /metrics`: Prometheus text exposition (agentd's metrics and Node's process metrics). */
export function metricsRoutes(app: App, runtime: Runtime): void {
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const body = await runtime.metrics.render();
    return reply.type(runtime.metrics.contentType).send(body);
  });
}
