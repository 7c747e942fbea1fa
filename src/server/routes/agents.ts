import Type from 'typebox';
import type { Runtime } from '../../runtime/index.js';
import type { App } from '../app.js';
import { headerValue, identityOf, withUser } from '../identity.js';
import { finishedRunReply } from '../run-route.js';
import {
  AgentParams,
  AgentSchema,
  RunAgentBody,
  RunErrorSchema,
  submitRequest,
  TaskSchema,
} from '../schemas.js';
import { streamTaskEvents } from '../sse.js';

export function agentRoutes(app: App, runtime: Runtime): void {
  app.get(
    '/v1/agents',
    {
      schema: {
        summary: 'List agents',
        tags: ['agents'],
        response: { 200: Type.Object({ object: Type.Literal('list'), data: Type.Array(AgentSchema) }) },
      },
    },
    async () => ({
      object: 'list' as const,
      data: runtime.agents().map((agent) => ({
        name: agent.name,
        description: agent.description,
        model: agent.model ?? null,
        tools: [...agent.tools],
        max_iterations: agent.maxIterations,
      })),
    }),
  );

  app.post(
    '/v1/agents/:name/run',
    {
      schema: {
        summary: 'Run an agent and answer with the finished task (or stream its events with stream=true)',
        tags: ['agents'],
        params: AgentParams,
        body: RunAgentBody,
        response: { 200: TaskSchema, '4xx': RunErrorSchema, '5xx': RunErrorSchema },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const identity = withUser(identityOf(request), body.user_id);
      const { task } = await runtime.submit(
        submitRequest(request.params.name, body, identity, headerValue(request.headers.traceparent)),
      );
      if (body.stream === true) {
        await streamTaskEvents(runtime, request.raw, reply.raw, task.id, identity.tenantId, undefined, reply);
        return reply;
      }
      // A synchronous caller that hangs up will never read the answer: stop the work.
      // The response's `close` (not the request's: that fires once the body is read) says the
      // connection went away; before the answer was written, that is a hang-up.
      reply.raw.once('close', () => {
        if (!task.finished && !reply.raw.writableEnded) void runtime.cancel(task.id, identity.tenantId);
      });
      await task.wait();
      const overhead = reply.elapsedTime - task.providerMs - task.toolMs;
      reply.header('x-agentd-overhead-ms', overhead.toFixed(3));
      const answer = finishedRunReply(task.record);
      if (answer.retryAfter !== undefined) reply.header('retry-after', answer.retryAfter);
      return reply.code(answer.status).send(answer.body);
    },
  );
}
