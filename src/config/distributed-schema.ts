import Type from 'typebox';

/**
 * `distributed`: many nodes sharing one Redis (task queue on BullMQ, task events on Redis Streams,
 * cancellation over pub/sub) and one Postgres (tasks, sessions). Needs `redis.url` and a
 * postgres `storage.url`.
 */
export const DistributedSchema = Type.Object(
  {
    enabled: Type.Boolean({
      default: false,
      description: 'queue tasks on Redis so any node runs them (needs redis.url and a postgres storage.url)',
    }),
    queue: Type.String({ minLength: 1, default: 'tasks', description: 'BullMQ queue name' }),
    worker_concurrency: Type.Integer({
      minimum: 1,
      default: 256,
      description:
        'jobs one node takes from the queue at once (tasks.max_concurrency still bounds how many run)',
    }),
    lock_duration_ms: Type.Integer({
      minimum: 100,
      default: 30_000,
      description: "a job's lock; a node silent this long loses its jobs to the others",
    }),
    stalled_interval_ms: Type.Integer({
      minimum: 100,
      default: 30_000,
      description: 'how often each node looks for jobs whose lock expired',
    }),
    max_stalled_count: Type.Integer({
      minimum: 0,
      default: 2,
      description: "times a job may lose its node before its task fails (per agent's on_interrupt first)",
    }),
    events_max_len: Type.Integer({
      minimum: 16,
      default: 1000,
      description: 'events kept per task in its Redis stream (XADD MAXLEN ~)',
    }),
    events_ttl_ms: Type.Integer({
      minimum: 1000,
      default: 3_600_000,
      description: "how long a task's event stream lives after its last start or finish",
    }),
    cancel_wait_ms: Type.Integer({
      minimum: 0,
      default: 5000,
      description: 'how long a cancel waits for the node running the task to confirm',
    }),
    reconcile_interval_ms: Type.Integer({
      minimum: 100,
      default: 5000,
      description: 'how often a node checks Postgres for tasks it awaits whose completion notice it missed',
    }),
  },
  { additionalProperties: false, default: {} },
);
