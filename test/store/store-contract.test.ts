import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { ChatMessage } from '../../src/llm/index.js';
import { type ApiKeyRecord, type SessionCaps, SqliteStore, type Store } from '../../src/store/index.js';
import { openTestPostgres } from '../helpers/postgres.js';
import { task } from '../helpers/store.js';

const msg = (role: ChatMessage['role'], content: string, tokens = 10) => ({
  message: { role, content },
  tokens,
  task_id: null,
});

interface Backend {
  name: string;
  /** A fresh, empty store; `flushIntervalMs` as the adapter's option. */
  open(flushIntervalMs?: number, sessionCaps?: SessionCaps): Promise<Store>;
  cleanup(): Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups) await cleanup();
});

const backends: Backend[] = [
  {
    name: 'SqliteStore',
    open: async (flushIntervalMs, sessionCaps) =>
      new SqliteStore({ path: ':memory:', flushIntervalMs, sessionCaps }),
    cleanup: async () => {},
  },
  {
    name: 'PostgresStore',
    async open(flushIntervalMs, sessionCaps) {
      const opened = await openTestPostgres({ flushIntervalMs, sessionCaps });
      cleanups.push(() => opened.drop());
      return opened.store;
    },
    cleanup: async () => {},
  },
];

/** The behaviour every Store adapter must share: the runtime relies on nothing else. */
for (const backend of backends) {
  describe(`Store contract: ${backend.name}`, () => {
    it('reads back exactly the task that was written, including queued updates', async () => {
      const store = await backend.open();
      const record = task('x1', { idempotency_key: 'k1', metadata: { nested: { a: [1, 2] } } });
      await store.insertTask(record);
      record.status = 'succeeded';
      record.result = 'done';
      record.usage = { input_tokens: 3, output_tokens: 4 };
      record.cost_usd = 0.5;
      record.error = { code: 'E', message: 'm', retryable: false };
      record.partial = true;
      record.started_at = 1_700_000_000_123;
      record.finished_at = 1_700_000_000_456;
      record.event_seq = 9;
      store.updateTask(record);
      assert.deepEqual(await store.getTask('x1'), record, 'reads see queued writes');
      assert.equal((await store.findTaskByIdempotencyKey('t1', 'k1'))?.id, 'x1');
      assert.equal(await store.findTaskByIdempotencyKey('t2', 'k1'), undefined, 'keys are per tenant');
      assert.equal(await store.getTask('missing'), undefined);
      await store.close();
    });

    it('refuses a second task with the same idempotency key in a tenant', async () => {
      const store = await backend.open();
      await store.insertTask(task('i1', { idempotency_key: 'same' }));
      await store.insertTask(task('i2', { idempotency_key: 'same', tenant_id: 't2' }));
      await assert.rejects(store.insertTask(task('i3', { idempotency_key: 'same' })));
      assert.equal(await store.getTask('i3'), undefined);
      await store.close();
    });

    it("lists a tenant's tasks newest first with cursor pagination and filters", async () => {
      const store = await backend.open();
      for (let i = 0; i < 7; i++) {
        await store.insertTask(
          task(`t${i}`, {
            created_at: 1000 + i,
            status: i % 2 === 0 ? 'succeeded' : 'failed',
            session_id: i < 3 ? 's' : null,
            agent: i === 6 ? 'b' : 'a',
          }),
        );
      }
      await store.insertTask(task('other', { tenant_id: 't2', created_at: 5000 }));
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listTasks({ tenant_id: 't1', limit: 3, cursor });
        seen.push(...page.items.map((t) => t.id));
        cursor = page.next_cursor ?? undefined;
      } while (cursor !== undefined);
      assert.deepEqual(seen, ['t6', 't5', 't4', 't3', 't2', 't1', 't0']);
      const failed = await store.listTasks({ tenant_id: 't1', status: 'failed', limit: 10 });
      assert.deepEqual(
        failed.items.map((t) => t.id),
        ['t5', 't3', 't1'],
      );
      const session = await store.listTasks({ tenant_id: 't1', session_id: 's', limit: 10 });
      assert.deepEqual(
        session.items.map((t) => t.id),
        ['t2', 't1', 't0'],
      );
      const agent = await store.listTasks({ tenant_id: 't1', agent: 'b', limit: 10 });
      assert.deepEqual(
        agent.items.map((t) => t.id),
        ['t6'],
      );
      await assert.rejects(store.listTasks({ tenant_id: 't1', limit: 3, cursor: 'garbage' }), /cursor/);
      await store.close();
    });

    it('appends session messages in order and reads windows by count and tokens', async () => {
      const store = await backend.open();
      await store.appendMessages('s1', 't1', [msg('user', 'u1'), msg('assistant', 'a1')]);
      await store.appendMessages('s1', 't1', [msg('user', 'u2'), msg('assistant', 'a2')]);
      assert.deepEqual(
        (await store.sessionWindow('s1', 3, 1000)).map((m) => m.content),
        ['a1', 'u2', 'a2'],
      );
      assert.deepEqual(
        (await store.sessionWindow('s1', 10, 25)).map((m) => m.content),
        ['u2', 'a2'],
      );
      assert.deepEqual(await store.sessionWindow('s1', 0, 1000), []);
      const session = await store.getSession('s1');
      assert.equal(session?.tenant_id, 't1');
      assert.equal(session?.message_count, 4);
      const page = await store.listMessages('s1', 1, 2);
      assert.deepEqual(
        page.items.map((m) => [m.seq, m.message.content, m.tokens]),
        [
          [2, 'a1', 10],
          [3, 'u2', 10],
        ],
      );
      assert.equal(page.next_cursor, '3');
      const rest = await store.listMessages('s1', 3, 10);
      assert.deepEqual(
        rest.items.map((m) => m.seq),
        [4],
      );
      assert.equal(rest.next_cursor, null);
      await store.close();
    });

    it('drops the oldest messages past max_messages and keeps seq, count and bytes exact', async () => {
      const store = await backend.open(undefined, { maxMessages: 3 });
      await store.appendMessages('c1', 't1', [msg('user', 'u1'), msg('assistant', 'a1')]);
      await store.appendMessages('c1', 't1', [msg('user', 'u2'), msg('assistant', 'a2')]);
      await store.appendMessages('c1', 't1', [msg('user', 'u3')]);
      const page = await store.listMessages('c1', 0, 10);
      assert.deepEqual(
        page.items.map((m) => [m.seq, m.message.content]),
        [
          [3, 'u2'],
          [4, 'a2'],
          [5, 'u3'],
        ],
      );
      const session = await store.getSession('c1');
      assert.equal(session?.message_count, 5, 'sequence numbers are never reused');
      assert.equal(session?.first_seq, 3);
      const bytes = page.items.reduce((sum, m) => sum + Buffer.byteLength(JSON.stringify(m.message)), 0);
      assert.equal(session?.bytes, bytes);
      assert.equal(session?.window_tokens, 30);
      assert.deepEqual(
        (await store.sessionWindow('c1', 10, 1000)).map((m) => m.content),
        ['u2', 'a2', 'u3'],
      );
      await store.close();
    });

    it('drops the oldest messages past max_bytes, within one append too', async () => {
      const one = Buffer.byteLength(JSON.stringify({ role: 'user', content: 'x'.repeat(100) }));
      const store = await backend.open(undefined, { maxBytes: one * 2 + 10 });
      const big = (i: number) => msg('user', `${i}`.padEnd(100, 'x'));
      await store.appendMessages('b1', 't1', [big(1), big(2), big(3), big(4)]);
      const session = await store.getSession('b1');
      assert.equal(session?.first_seq, 3);
      assert.ok((session?.bytes ?? Infinity) <= one * 2 + 10);
      assert.deepEqual(
        (await store.listMessages('b1', 0, 10)).items.map((m) => m.seq),
        [3, 4],
      );
      await store.close();
    });

    it('starts the window at a saved summary and keeps the summarised originals', async () => {
      const store = await backend.open();
      await store.appendMessages('w1', 't1', [
        msg('user', 'u1'),
        msg('assistant', 'a1'),
        msg('user', 'u2'),
        msg('assistant', 'a2'),
      ]);
      assert.equal((await store.getSession('w1'))?.window_tokens, 40);
      // Read once, so a cached tail must be replaced by the summary.
      assert.equal((await store.sessionWindow('w1', 10, 1000)).length, 4);
      const saved = await store.saveSummary('w1', {
        expectedThrough: 0,
        through: 2,
        content: 'u1 asked, a1 answered',
        tokens: 7,
        task_id: 'task-1',
      });
      assert.equal(saved, true);
      const stale = await store.saveSummary('w1', {
        expectedThrough: 0,
        through: 3,
        content: 'stale',
        tokens: 1,
        task_id: null,
      });
      assert.equal(stale, false, 'a compaction computed from an older state is refused');
      await store.appendMessages('w1', 't1', [msg('user', 'u3')]);
      const window = await store.sessionWindow('w1', 10, 1000);
      assert.deepEqual(
        window.map((m) => [m.role, m.content]),
        [
          ['system', 'Summary of the earlier conversation:\nu1 asked, a1 answered'],
          ['user', 'u2'],
          ['assistant', 'a2'],
          ['user', 'u3'],
        ],
      );
      assert.deepEqual(
        (await store.sessionWindow('w1', 3, 1000)).map((m) => m.content),
        ['u2', 'a2', 'u3'],
        'the summary comes only with everything after it',
      );
      const session = await store.getSession('w1');
      assert.equal(session?.summary_through, 2);
      assert.equal(session?.window_tokens, 30, 'messages after the summary');
      assert.equal(session?.summary_tokens, 7);
      const all = await store.listMessages('w1', 0, 10);
      assert.deepEqual(
        all.items.map((m) => [m.seq, m.kind]),
        [
          [1, 'message'],
          [2, 'message'],
          [3, 'message'],
          [4, 'message'],
          [5, 'summary'],
          [6, 'message'],
        ],
      );
      await store.close();
    });

    it('deletes finished tasks past a cutoff, oldest first, in batches; never a queued or running one', async () => {
      const store = await backend.open();
      const finished = (
        id: string,
        created: number,
        finishedAt: number,
        status: 'succeeded' | 'failed' | 'cancelled',
      ) => task(id, { status, created_at: created, started_at: created, finished_at: finishedAt });
      await store.insertTask(finished('old-ok', 1000, 1500, 'succeeded'));
      await store.insertTask(finished('old-failed', 1100, 1600, 'failed'));
      await store.insertTask(finished('old-cancelled', 1200, 1700, 'cancelled'));
      await store.insertTask(task('old-queued', { created_at: 1300 }));
      await store.insertTask(task('old-running', { created_at: 1400, status: 'running', started_at: 1400 }));
      await store.insertTask(finished('long', 1450, 5000, 'succeeded'));
      await store.insertTask(finished('new', 4000, 4500, 'succeeded'));
      // A task queued and then finished through the write queue counts once it is finished.
      const late = task('late', { created_at: 1800 });
      await store.insertTask(late);
      late.status = 'succeeded';
      late.finished_at = 1900;
      store.updateTask(late);

      assert.equal(await store.deleteFinishedTasks(2000, 2), 2, 'a full batch');
      assert.equal(await store.getTask('old-ok'), undefined, 'oldest first');
      assert.equal(await store.getTask('old-failed'), undefined);
      assert.equal(await store.deleteFinishedTasks(2000, 500), 2);
      assert.equal(await store.getTask('old-cancelled'), undefined);
      assert.equal(await store.getTask('late'), undefined, 'its queued update was committed first');
      assert.equal(await store.deleteFinishedTasks(2000, 500), 0, 'nothing left before the cutoff');
      for (const id of ['old-queued', 'old-running', 'long', 'new'])
        assert.equal((await store.getTask(id))?.id, id, `${id} is kept`);
      const page = await store.listTasks({ tenant_id: 't1', limit: 10 });
      assert.deepEqual(page.items.map((t) => t.id).sort(), ['long', 'new', 'old-queued', 'old-running']);
      assert.equal(await store.deleteFinishedTasks(10_000, 500), 2, 'later cutoff: the rest of the finished');
      await store.close();
    });

    it('deletes idle sessions with their messages; a deleted session starts again empty', async () => {
      const store = await backend.open();
      await store.appendMessages('idle', 't1', [msg('user', 'old')]);
      await store.sessionWindow('idle', 10, 1000);
      const cutoff = Date.now() + 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
      await store.appendMessages('busy', 't1', [msg('user', 'new')]);
      await store.flush();
      assert.equal(await store.deleteIdleSessions(cutoff, 100), 1);
      assert.equal(await store.getSession('idle'), undefined);
      assert.equal((await store.getSession('busy'))?.message_count, 1);
      assert.deepEqual(await store.sessionWindow('idle', 10, 1000), []);
      assert.equal((await store.listMessages('idle', 0, 10)).items.length, 0);
      await store.appendMessages('idle', 't2', [msg('user', 'fresh')]);
      assert.deepEqual(
        (await store.listMessages('idle', 0, 10)).items.map((m) => [m.seq, m.message.content]),
        [[1, 'fresh']],
      );
      assert.equal((await store.getSession('idle'))?.tenant_id, 't2');
      assert.equal(await store.deleteSession('idle'), true);
      assert.equal(await store.deleteSession('idle'), false);
      await store.close();
    });

    it('appends thousands of messages in one call in order', async () => {
      const store = await backend.open();
      const many = Array.from({ length: 2100 }, (_, i) =>
        msg(i % 2 === 0 ? 'user' : 'assistant', `m${i}`, 1),
      );
      await store.appendMessages('big', 't1', many);
      await store.appendMessages('big', 't1', [msg('user', 'last', 1)]);
      const window = await store.sessionWindow('big', 20, 1000);
      assert.equal(window.length, 20);
      assert.equal(window[0]?.content, 'm2081');
      assert.equal(window[19]?.content, 'last');
      const page = await store.listMessages('big', 2090, 100);
      assert.deepEqual(
        page.items.map((m) => m.message.content),
        ['m2090', 'm2091', 'm2092', 'm2093', 'm2094', 'm2095', 'm2096', 'm2097', 'm2098', 'm2099', 'last'],
      );
      assert.equal((await store.getSession('big'))?.message_count, 2101);
      await store.close();
    });

    it("adds finished tasks' usage to the session totals", async () => {
      const store = await backend.open();
      await store.appendMessages('s2', 't1', [msg('user', 'q')]);
      store.addSessionUsage('s2', 100, 0.25);
      store.addSessionUsage('s2', 50, 0.5);
      const session = await store.getSession('s2');
      assert.equal(session?.tokens_used, 150);
      assert.equal(session?.usd_used, 0.75);
      await store.close();
    });

    it('writes a task once per batch, with its latest state', async () => {
      const store = await backend.open(1000);
      const record = task('batched');
      const inserted = store.insertTask(record, false);
      record.status = 'running';
      store.updateTask(record);
      record.status = 'succeeded';
      record.event_seq = 7;
      store.updateTask(record);
      await store.flush();
      await inserted;
      const stored = await store.getTask('batched');
      assert.equal(stored?.status, 'succeeded');
      assert.equal(stored?.event_seq, 7);
      await store.close();
    });

    it('reports unfinished tasks for recovery, oldest first', async () => {
      const store = await backend.open();
      await store.insertTask(task('q', { status: 'queued', created_at: 2 }));
      await store.insertTask(task('r', { status: 'running', created_at: 1 }));
      await store.insertTask(task('d', { status: 'succeeded' }));
      assert.deepEqual(
        (await store.unfinishedTasks()).map((t) => t.id),
        ['r', 'q'],
      );
      await store.close();
    });

    it('creates, finds, lists and revokes API keys by hash', async () => {
      const store = await backend.open();
      const key = (id: string, tenant: string, created: number): ApiKeyRecord => ({
        id,
        prefix: `ak_${id}`,
        hash: `sha256:${id}`,
        tenant_id: tenant,
        user_id: null,
        name: `key ${id}`,
        agents: id === 'k1' ? ['a'] : null,
        limits: id === 'k1' ? { concurrency: 2 } : null,
        created_at: created,
        revoked_at: null,
      });
      await store.createApiKey(key('k1', 'acme', 1));
      await store.createApiKey(key('k2', 'acme', 2));
      await store.createApiKey(key('k3', 'other', 3));
      assert.deepEqual(await store.findApiKeyByHash('sha256:k1'), key('k1', 'acme', 1));
      assert.equal(await store.findApiKeyByHash('sha256:none'), undefined);
      assert.deepEqual(
        (await store.listApiKeys()).map((k) => k.id),
        ['k1', 'k2', 'k3'],
      );
      assert.deepEqual(
        (await store.listApiKeys('acme')).map((k) => k.id),
        ['k1', 'k2'],
      );
      assert.equal(await store.countActiveApiKeys(), 3);
      assert.equal(await store.revokeApiKey('k2'), true);
      assert.equal(await store.revokeApiKey('k2'), false, 'a revoked key cannot be revoked again');
      assert.equal(await store.countActiveApiKeys(), 2);
      assert.notEqual((await store.findApiKeyByHash('sha256:k2'))?.revoked_at, null);
      assert.equal(await store.ping(), true);
      await store.close();
    });
  });
}

describe('PostgresStore', () => {
  it('never rewrites a finished task nor takes it back to an earlier attempt', async () => {
    const { store, drop } = await openTestPostgres();
    const done = task('fin', { status: 'succeeded', result: 'ok', attempt: 2 });
    await store.insertTask(done);
    store.updateTask(task('fin', { status: 'running', attempt: 2 }));
    assert.equal((await store.getTask('fin'))?.status, 'succeeded', 'a finished row stays finished');
    await store.insertTask(task('run', { status: 'running', attempt: 2 }));
    store.updateTask(task('run', { status: 'failed', attempt: 1 }));
    assert.equal((await store.getTask('run'))?.status, 'running', 'a stale attempt cannot overwrite');
    await drop();
  });

  it('migrates once when several nodes open the same schema at once', async () => {
    const first = await openTestPostgres();
    const { PostgresStore } = await import('../../src/store/index.js');
    const { TEST_DATABASE_URL } = await import('../helpers/postgres.js');
    const others = await Promise.all(
      [1, 2, 3].map(() => PostgresStore.open({ url: TEST_DATABASE_URL, schema: first.schema, poolSize: 1 })),
    );
    await others[0]!.insertTask(task('shared'));
    assert.equal((await first.store.getTask('shared'))?.id, 'shared', 'nodes share one schema');
    for (const other of others) await other.close();
    await first.drop();
  });

  it('commits many tasks of one batch in multi-row statements', async () => {
    const { store, drop } = await openTestPostgres({ flushIntervalMs: 1000 });
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 2500; i++) writes.push(store.insertTask(task(`m${i}`, { created_at: i }), false));
    await store.flush();
    await Promise.all(writes);
    const page = await store.listTasks({ tenant_id: 't1', limit: 1 });
    assert.equal(page.items[0]?.id, 'm2499');
    assert.equal((await store.unfinishedTasks()).length, 2500);
    await drop();
  });
});
