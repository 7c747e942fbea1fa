import type { IncomingMessage, ServerResponse } from 'node:http';
import { NotFoundError } from '../errors.js';
import type { EventStream, Runtime } from '../runtime/index.js';

/** Bytes an SSE client may fall behind by before it is disconnected (it can resume). */
const MAX_BUFFERED = 4 * 1024 * 1024;

/** SSE ids are `seq` for a task's first run and `attempt.seq` after a restart re-ran it. */
export function formatEventId(attempt: number, seq: number): string {
  return attempt === 1 ? String(seq) : `${attempt}.${seq}`;
}

/** Parses a `Last-Event-ID`; an unreadable id resumes from the start. */
export function parseEventId(id: string | undefined): { attempt: number; seq: number } {
  if (id === undefined || id === '') return { attempt: 1, seq: 0 };
  const dot = id.indexOf('.');
  const attempt = dot === -1 ? 1 : Number(id.slice(0, dot));
  const seq = Number(dot === -1 ? id : id.slice(dot + 1));
  if (!Number.isSafeInteger(attempt) || !Number.isSafeInteger(seq) || attempt < 1 || seq < 0)
    return { attempt: 1, seq: 0 };
  return { attempt, seq };
}

function frame(id: string, type: string, data: unknown): string {
  return `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Streams a task's events as SSE: buffered events after `Last-Event-ID` (or `?after=`), then live
 * ones, with heartbeats, until `task.completed`. A client that cannot keep up is disconnected and
 * resumes from its last id. `framework` (a Fastify reply) is told to leave the response alone
 * once the stream starts.
 */
export async function streamTaskEvents(
  runtime: Runtime,
  req: IncomingMessage,
  res: ServerResponse,
  taskId: string,
  tenantId: string,
  afterId: string | undefined,
  framework?: { hijack(): unknown },
): Promise<void> {
  let attempt = 1;
  let closed = false;
  // Live events can arrive before the headers are written; they wait here until then.
  let early: { seq: number; type: string; data: unknown; attempt?: number }[] | undefined = [];
  let heartbeat: NodeJS.Timeout | undefined;
  let stream: EventStream | undefined;
  const finish = (): void => {
    if (closed) return;
    closed = true;
    if (heartbeat !== undefined) clearInterval(heartbeat);
    stream?.unsubscribe();
    if (!res.writableEnded) res.end();
  };
  const write = (text: string): void => {
    if (closed) return;
    if (!res.write(text) && res.writableLength > MAX_BUFFERED) finish();
  };
  const send = (event: { seq: number; type: string; data: unknown; attempt?: number }): void => {
    if (early !== undefined) {
      early.push(event);
      return;
    }
    write(frame(formatEventId(event.attempt ?? attempt, event.seq), event.type, event.data));
    if (event.type === 'task.completed') finish();
  };

  stream = await runtime.events(taskId, tenantId, parseEventId(afterId), send);
  if (stream === undefined) throw new NotFoundError(`no task "${taskId}"`);
  attempt = stream.attempt;
  framework?.hijack();
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  req.on('close', finish);
  if (stream.gap)
    write(frame(formatEventId(attempt, 0), 'stream.gap', { reason: 'older events were evicted' }));
  const live = early;
  early = undefined;
  for (const event of stream.backlog) send(event);
  for (const event of live) send(event);
  if (stream.finished || closed) {
    finish();
    return;
  }
  const interval = runtime.config.server.sse_heartbeat_ms;
  heartbeat = setInterval(() => write(': heartbeat\n\n'), interval);
  heartbeat.unref();
}
