import Type from 'typebox';
import { CancelledError, statusOf } from '../../errors.js';
import { Cancellation } from '../../lib/index.js';
import type { Runtime } from '../../runtime/index.js';
import type { App } from '../app.js';
import { identityOf } from '../identity.js';
import { ErrorBodySchema } from '../schemas.js';

const ToolParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) });

const ExecuteBody = Type.Object(
  {
    arguments: Type.Record(Type.String(), Type.Unknown(), {
      default: {},
      description: "the tool's arguments, checked against its JSON Schema",
    }),
    agent: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description:
          'run as this agent: its tool allow-list and limits apply. Without it, only tools listed in tools.direct_execute run',
      }),
    ),
  },
  { additionalProperties: false },
);

const ToolResultSchema = Type.Object({
  object: Type.Literal('tool_result'),
  id: Type.String(),
  tool: Type.String(),
  ok: Type.Literal(true),
  result: Type.Unknown({
    description: "the tool's answer; for run_javascript/run_python the run's result object",
  }),
  duration_ms: Type.Number(),
});

const ToolErrorSchema = Type.Object({
  error: ErrorBodySchema,
  id: Type.Optional(Type.String()),
  tool: Type.Optional(Type.String()),
  duration_ms: Type.Optional(Type.Number()),
});

const ToolListSchema = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(
    Type.Object({
      name: Type.String(),
      description: Type.String(),
      parameters: Type.Object({}, { additionalProperties: true }),
      direct: Type.Boolean({ description: 'may run without naming an agent (tools.direct_execute)' }),
    }),
  ),
});

/** `GET /v1/tools` and `POST /v1/tools/{name}/execute`: tools without a model in the loop. */
export function toolRoutes(app: App, runtime: Runtime): void {
  app.get(
    '/v1/tools',
    {
      schema: {
        summary: 'List registered tools and their argument schemas',
        tags: ['tools'],
        response: { 200: ToolListSchema },
      },
    },
    async () => {
      const direct = new Set(runtime.config.tools.direct_execute);
      return {
        object: 'list' as const,
        data: runtime.registry.names().map((name) => {
          const tool = runtime.registry.get(name)!.definition;
          return {
            name,
            description: tool.description,
            parameters: tool.parameters as Record<string, unknown>,
            direct: direct.has(name),
          };
        }),
      };
    },
  );

  app.post(
    '/v1/tools/:name/execute',
    {
      schema: {
        summary: 'Run one tool directly with JSON arguments (as an agent, or a tool in tools.direct_execute)',
        tags: ['tools'],
        params: ToolParams,
        body: ExecuteBody,
        response: { 200: ToolResultSchema, '4xx': ToolErrorSchema, '5xx': ToolErrorSchema },
      },
    },
    async (request, reply) => {
      const identity = identityOf(request);
      const cancellation = new Cancellation();
      // A caller that hangs up will never read the result: stop the tool (and its sandbox run).
      // (The response's 'close', not the request's: Node closes a request once its body is read.)
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished)
          cancellation.abortWith(new CancelledError('the client closed the request'));
      });
      const outcome = await runtime.executeTool({
        tool: request.params.name,
        arguments: request.body.arguments,
        agent: request.body.agent,
        tenantId: identity.tenantId,
        direct: 'listed',
        cancellation,
      });
      const duration = Math.round(outcome.durationMs * 1000) / 1000;
      if (outcome.ok) {
        return {
          object: 'tool_result' as const,
          id: outcome.id,
          tool: outcome.name,
          ok: true as const,
          result: outcome.result,
          duration_ms: duration,
        };
      }
      const error = outcome.error!;
      if (error.retry_after_ms !== undefined)
        reply.header('retry-after', String(Math.max(1, Math.ceil(error.retry_after_ms / 1000))));
      return reply
        .code(statusOf(error.code))
        .send({ error, id: outcome.id, tool: outcome.name, duration_ms: duration });
    },
  );
}
