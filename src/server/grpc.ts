import { fileURLToPath } from 'node:url';
import {
  type GrpcObject,
  loadPackageDefinition,
  type Metadata,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { type Identity, OPEN_IDENTITY } from '../admission/index.js';
import type { Task, TaskEvent } from '../agent/index.js';
import { InvalidRequestError, NotFoundError, toAgentdError, UnauthorizedError } from '../errors.js';
import type { Runtime, SubmitRequest } from '../runtime/index.js';
import type { TaskRecord } from '../store/index.js';
import { grpcError } from './grpc-status.js';
import { formatEventId } from './sse.js';

const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

interface ExecuteTaskRequest {
  agent: string;
  input: string;
  session_id: string;
  user_id: string;
  model: string;
  tier: string;
  mode: string;
  tools: string[];
  priority: number;
  metadata_json: string;
  idempotency_key: string;
  timeout_ms: number;
}

type Callback<T> = sendUnaryData<T>;

/** Loads a service definition from `proto/` (shipped with the package). */
function loadService(file: string, path: string[]): ServiceDefinition {
  const definition = loadSync(file, {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
  });
  let node: unknown = loadPackageDefinition(definition);
  for (const part of path) node = (node as GrpcObject)[part];
  return (node as { service: ServiceDefinition }).service;
}

/**
 * The gRPC interface: `agentd.v1.AgentService` and the standard `grpc.health.v1.Health`. Calls are
 * authenticated with the same API keys (`authorization: Bearer <key>` metadata); a call's deadline
 * becomes the task's time limit, and a cancelled call cancels its task.
 */
export class GrpcServer {
  readonly #runtime: Runtime;
  readonly #server: Server;

  constructor(runtime: Runtime) {
    this.#runtime = runtime;
    const maxBytes = runtime.config.server.grpc.max_message_bytes;
    this.#server = new Server({
      'grpc.max_receive_message_length': maxBytes,
      'grpc.max_send_message_length': maxBytes,
    });
    this.#server.addService(loadService('agentd.proto', ['agentd', 'v1', 'AgentService']), {
      ExecuteTask: (call: ServerUnaryCall<ExecuteTaskRequest, unknown>, callback: Callback<unknown>) =>
        void this.#executeTask(call, callback),
      StreamExecuteTask: (call: ServerWritableStream<ExecuteTaskRequest, unknown>) =>
        void this.#streamExecuteTask(call),
      GetTask: (call: ServerUnaryCall<{ id: string }, unknown>, callback: Callback<unknown>) =>
        void this.#taskCall(call, callback, (id, tenant) => runtime.getTask(id, tenant)),
      CancelTask: (call: ServerUnaryCall<{ id: string }, unknown>, callback: Callback<unknown>) =>
        void this.#taskCall(call, callback, (id, tenant) => runtime.cancel(id, tenant)),
      ListAgents: (call: ServerUnaryCall<unknown, unknown>, callback: Callback<unknown>) =>
        void this.#listAgents(call, callback),
    });
    this.#server.addService(loadService('grpc/health/v1/health.proto', ['grpc', 'health', 'v1', 'Health']), {
      Check: (call: ServerUnaryCall<{ service: string }, unknown>, callback: Callback<unknown>) => {
        const serving = this.#servingStatus(call.request.service);
        if (serving === undefined)
          callback({ code: status.NOT_FOUND, details: `unknown service "${call.request.service}"` });
        else callback(null, { status: serving });
      },
      Watch: (call: ServerWritableStream<{ service: string }, unknown>) => this.#watchHealth(call),
    });
  }

  /** Listens on `host:port` (0 picks a free port) and resolves to the bound port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      this.#server.bindAsync(address, ServerCredentials.createInsecure(), (err, bound) => {
        if (err !== null) reject(err);
        else resolve(bound);
      });
    });
  }

  /** Stops accepting calls; running calls get `graceMs` to finish, then are cut. */
  close(graceMs = 5000): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async #executeTask(
    call: ServerUnaryCall<ExecuteTaskRequest, unknown>,
    callback: Callback<unknown>,
  ): Promise<void> {
    let task: Task;
    try {
      const identity = await this.#identify(call.metadata);
      ({ task } = await this.#runtime.submit(submitRequest(call.request, identity, call.getDeadline())));
    } catch (err) {
      callback(grpcError(toAgentdError(err).toBody()));
      return;
    }
    call.once('cancelled', () => {
      if (!task.finished) void this.#runtime.cancel(task.id, task.record.tenant_id);
    });
    await task.wait();
    const record = task.record;
    if (record.status === 'succeeded') callback(null, taskMessage(record));
    else
      callback(
        grpcError(
          record.error ?? { code: 'AGENTD_INTERNAL', message: 'the task failed', retryable: false },
          record.id,
        ),
      );
  }

  async #streamExecuteTask(call: ServerWritableStream<ExecuteTaskRequest, unknown>): Promise<void> {
    let task: Task;
    try {
      const identity = await this.#identify(call.metadata);
      ({ task } = await this.#runtime.submit(submitRequest(call.request, identity, call.getDeadline())));
    } catch (err) {
      call.emit('error', grpcError(toAgentdError(err).toBody()));
      return;
    }
    const attempt = task.record.attempt;
    let done = false;
    const send = (event: TaskEvent): void => {
      if (done) return;
      call.write({
        task_id: task.id,
        event_id: formatEventId(attempt, event.seq),
        type: event.type,
        data_json: JSON.stringify(event.data),
      });
      if (event.type === 'task.completed') {
        done = true;
        subscription.unsubscribe();
        call.end();
      }
    };
    const subscription = task.events.subscribe(0, send);
    call.once('cancelled', () => {
      done = true;
      subscription.unsubscribe();
      if (!task.finished) void this.#runtime.cancel(task.id, task.record.tenant_id);
    });
    for (const event of subscription.backlog) send(event);
  }

  async #taskCall(
    call: ServerUnaryCall<{ id: string }, unknown>,
    callback: Callback<unknown>,
    action: (id: string, tenant: string) => Promise<TaskRecord | undefined>,
  ): Promise<void> {
    try {
      const identity = await this.#identify(call.metadata);
      if (call.request.id === '')
        throw new InvalidRequestError('`id` is required', { details: { field: 'id' } });
      const record = await action(call.request.id, identity.tenantId);
      if (record === undefined)
        throw new NotFoundError(`no task "${call.request.id}"`, { details: { field: 'id' } });
      callback(null, taskMessage(record));
    } catch (err) {
      callback(grpcError(toAgentdError(err).toBody()));
    }
  }

  async #listAgents(call: ServerUnaryCall<unknown, unknown>, callback: Callback<unknown>): Promise<void> {
    try {
      const identity = await this.#identify(call.metadata);
      const agents = this.#runtime
        .agents()
        .filter((agent) => identity.agents === undefined || identity.agents.has(agent.name))
        .map((agent) => ({
          name: agent.name,
          description: agent.description,
          model: agent.model ?? '',
          tools: [...agent.tools],
          max_iterations: agent.maxIterations,
        }));
      callback(null, { agents });
    } catch (err) {
      callback(grpcError(toAgentdError(err).toBody()));
    }
  }

  #servingStatus(service: string): 'SERVING' | 'NOT_SERVING' | undefined {
    if (service !== '' && service !== 'agentd.v1.AgentService') return undefined;
    return this.#runtime.draining ? 'NOT_SERVING' : 'SERVING';
  }

  /** Sends the status, then every change, until the client cancels. */
  #watchHealth(call: ServerWritableStream<{ service: string }, unknown>): void {
    let last = this.#servingStatus(call.request.service) ?? 'SERVICE_UNKNOWN';
    call.write({ status: last });
    const timer = setInterval(() => {
      const now = this.#servingStatus(call.request.service) ?? 'SERVICE_UNKNOWN';
      if (now !== last) {
        last = now;
        call.write({ status: now });
      }
    }, 1000);
    timer.unref();
    call.once('cancelled', () => clearInterval(timer));
    call.once('close', () => clearInterval(timer));
  }

  async #identify(metadata: Metadata): Promise<Identity> {
    const keys = this.#runtime.keys;
    if (!(await keys.enabled())) return OPEN_IDENTITY;
    const header = metadata.get('authorization')[0];
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const key = match?.[1] ?? (metadata.get('x-api-key')[0] as string | undefined);
    if (key === undefined)
      throw new UnauthorizedError('an API key is required: send authorization: Bearer <key>');
    const identity = await keys.identify(key);
    if (identity === undefined) throw new UnauthorizedError('unknown or revoked API key');
    return identity;
  }
}

/** The runtime request of an ExecuteTask call; the call's deadline bounds the task. */
function submitRequest(
  request: ExecuteTaskRequest,
  identity: Identity,
  deadline: Date | number,
): SubmitRequest {
  const deadlineAt = deadline instanceof Date ? deadline.getTime() : deadline;
  const remaining = Number.isFinite(deadlineAt)
    ? Math.max(1, Math.floor(deadlineAt - Date.now()))
    : undefined;
  let timeoutMs = request.timeout_ms > 0 ? request.timeout_ms : undefined;
  if (remaining !== undefined) timeoutMs = Math.min(timeoutMs ?? remaining, remaining);
  let metadata: Record<string, unknown> | undefined;
  if (request.metadata_json !== '') {
    try {
      metadata = JSON.parse(request.metadata_json) as Record<string, unknown>;
    } catch {
      throw new InvalidRequestError('`metadata_json` is not valid JSON', {
        details: { field: 'metadata_json' },
      });
    }
  }
  return {
    agent: request.agent,
    input: request.input,
    identity:
      request.user_id !== '' && identity.userId === undefined
        ? { ...identity, userId: request.user_id }
        : identity,
    sessionId: request.session_id || undefined,
    model: request.model || undefined,
    tier: request.tier || undefined,
    mode: request.mode || undefined,
    tools: request.tools.length > 0 ? request.tools : undefined,
    priority: request.priority !== 0 ? request.priority : undefined,
    metadata,
    idempotencyKey: request.idempotency_key || undefined,
    timeoutMs,
    deadlineMs: remaining,
    durable: true,
  };
}

function iso(ms: number | null): string {
  return ms === null ? '' : new Date(ms).toISOString();
}

/** A task record as the proto's Task message. */
function taskMessage(record: TaskRecord): Record<string, unknown> {
  return {
    id: record.id,
    agent: record.agent,
    status: record.status,
    input: record.input,
    result: record.result ?? '',
    partial: record.partial,
    error:
      record.error === null ? null : { ...record.error, retry_after_ms: record.error.retry_after_ms ?? 0 },
    model: record.model ?? '',
    usage: {
      input_tokens: record.usage.input_tokens,
      output_tokens: record.usage.output_tokens,
      total_tokens: record.usage.input_tokens + record.usage.output_tokens,
    },
    cost_usd: record.cost_usd,
    iterations: record.iterations,
    tool_calls: record.tool_calls,
    session_id: record.session_id ?? '',
    attempt: record.attempt,
    created_at: iso(record.created_at),
    started_at: iso(record.started_at),
    finished_at: iso(record.finished_at),
  };
}
