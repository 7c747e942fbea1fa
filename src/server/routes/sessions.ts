import Type from 'typebox';
import { NotFoundError } from '../../errors.js';
import type { Runtime } from '../../runtime/index.js';
import type { App } from '../app.js';
import { identityOf } from '../identity.js';
import { ErrorResponseSchema, MessageSchema, MessagesQuery, SessionParams } from '../schemas.js';

export function sessionRoutes(app: App, runtime: Runtime): void {
  app.get(
    '/v1/sessions/:id/messages',
    {
      schema: {
        summary: "A session's messages, oldest first",
        tags: ['sessions'],
        params: SessionParams,
        querystring: MessagesQuery,
        response: {
          200: Type.Object({
            object: Type.Literal('list'),
            data: Type.Array(MessageSchema),
            next_cursor: Type.Union([Type.String(), Type.Null()]),
          }),
          '4xx': ErrorResponseSchema,
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const page = await runtime.sessionMessages(
        id,
        identityOf(request).tenantId,
        request.query.after,
        request.query.limit,
      );
      if (page === undefined) throw new NotFoundError(`no session "${id}"`);
      return {
        object: 'list' as const,
        data: page.items.map((item) => ({
          seq: item.seq,
          kind: item.kind,
          role: item.message.role,
          content: item.message.content,
          ...(item.message.tool_calls === undefined ? {} : { tool_calls: item.message.tool_calls }),
          ...(item.message.tool_call_id === undefined ? {} : { tool_call_id: item.message.tool_call_id }),
          task_id: item.task_id,
          created_at: new Date(item.created_at).toISOString(),
        })),
        next_cursor: page.next_cursor,
      };
    },
  );

  app.delete(
    '/v1/sessions/:id',
    {
      schema: {
        summary: 'Delete a session and all its messages (summaries included)',
        tags: ['sessions'],
        params: SessionParams,
        response: {
          200: Type.Object({ id: Type.String(), object: Type.Literal('session'), deleted: Type.Boolean() }),
          '4xx': ErrorResponseSchema,
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      if (!(await runtime.deleteSession(id, identityOf(request).tenantId)))
        throw new NotFoundError(`no session "${id}"`);
      return { id, object: 'session' as const, deleted: true };
    },
  );
}
