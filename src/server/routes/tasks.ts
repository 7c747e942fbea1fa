import { InvalidRequestError, NotFoundError } from '../../errors.js';
import type { Runtime } from '../../runtime/index.js';
import type { App } from '../app.js';
import { headerValue, identityOf, withUser } from '../identity.js';
import {
  CreateTaskBody,
  ErrorResponseSchema,
  EventsQuery,
  ListTasksQuery,
  submitRequest,
  TaskPageSchema,
  TaskParams,
  TaskSchema,
  taskJson,
} from '../schemas.js';
import { streamTaskEvents } from '../sse.js';

/** `Prefer: wait=N` (RFC 7240, seconds) in milliseconds. */
function preferWaitMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header.join(',') : header;
  if (value === undefined) return undefined;
  const match = /(?:^|[,;\s])wait=(\d+)/i.exec(value);
  return match === null ? undefined : Number(match[1]) * 1000;
}

function idempotencyKey(header: string | string[] | undefined): string | undefined {
  const key = Array.isArray(header) ? header[0] : header;
  if (key === undefined) return undefined;
  if (key.length === 0 || key.length > 255) {
    throw new InvalidRequestError('Idempotency-Key must be 1 to 255 characters', {
      details: { field: 'headers.idempotency-key' },
    });
  }
  return key;
}

export function taskRoutes(app: App, runtime: Runtime): void {
  const maxWait = runtime.config.server.max_wait_ms;

  app.post(
    '/v1/tasks',
    {
      schema: {
        summary: 'Create a task (asynchronous; optionally wait for the result)',
        tags: ['tasks'],
        body: CreateTaskBody,
        response: {
          200: TaskSchema,
          202: TaskSchema,
          '4xx': ErrorResponseSchema,
          '5xx': ErrorResponseSchema,
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const identity = withUser(identityOf(request), body.user_id);
      const submission = submitRequest(body.agent, body, identity, headerValue(request.headers.traceparent));
      submission.idempotencyKey = idempotencyKey(request.headers['idempotency-key']);
      submission.priority = body.priority;
      submission.durable = true;
      const { task, created } = await runtime.submit(submission);
      const asked =
        body.wait === true
          ? maxWait
          : typeof body.wait === 'number'
            ? body.wait
            : preferWaitMs(request.headers.prefer);
      if (asked !== undefined && asked > 0) await task.wait(Math.min(asked, maxWait));
      if (!created) reply.header('idempotent-replayed', 'true');
      reply.header('location', `/v1/tasks/${task.id}`);
      return reply.code(task.finished ? 200 : 202).send(taskJson(task.record));
    },
  );

  app.get(
    '/v1/tasks',
    {
      schema: {
        summary: 'List tasks, newest first',
        tags: ['tasks'],
        querystring: ListTasksQuery,
        response: { 200: TaskPageSchema, '4xx': ErrorResponseSchema },
      },
    },
    async (request) => {
      const query = request.query;
      const page = await runtime.listTasks({
        tenant_id: identityOf(request).tenantId,
        session_id: query.session_id ?? query.session,
        status: query.status,
        agent: query.agent,
        limit: query.limit,
        cursor: query.cursor,
      });
      return { object: 'list' as const, data: page.items.map(taskJson), next_cursor: page.next_cursor };
    },
  );

  app.get(
    '/v1/tasks/:id',
    {
      schema: {
        summary: 'Get a task',
        tags: ['tasks'],
        params: TaskParams,
        response: { 200: TaskSchema, '4xx': ErrorResponseSchema },
      },
    },
    async (request) => {
      const record = await runtime.getTask(request.params.id, identityOf(request).tenantId);
      if (record === undefined) throw new NotFoundError(`no task "${request.params.id}"`);
      return taskJson(record);
    },
  );

  app.post(
    '/v1/tasks/:id/cancel',
    {
      schema: {
        summary: 'Cancel a queued or running task (a finished task is returned unchanged)',
        tags: ['tasks'],
        params: TaskParams,
        response: { 200: TaskSchema, '4xx': ErrorResponseSchema },
      },
    },
    async (request) => {
      const record = await runtime.cancel(request.params.id, identityOf(request).tenantId);
      if (record === undefined) throw new NotFoundError(`no task "${request.params.id}"`);
      return taskJson(record);
    },
  );

  app.get(
    '/v1/tasks/:id/events',
    {
      schema: {
        summary: "Stream a task's events (SSE); resume with Last-Event-ID or ?after=",
        tags: ['tasks'],
        params: TaskParams,
        querystring: EventsQuery,
        produces: ['text/event-stream'],
      },
    },
    async (request, reply) => {
      const lastEventId = request.headers['last-event-id'];
      const after = (Array.isArray(lastEventId) ? lastEventId[0] : lastEventId) ?? request.query.after;
      await streamTaskEvents(
        runtime,
        request.raw,
        reply.raw,
        request.params.id,
        identityOf(request).tenantId,
        after,
        reply,
      );
    },
  );
}
