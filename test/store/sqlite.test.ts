import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ChatMessage } from '../../src/llm/index.js';
import { type SessionRecord, SessionTailCache, SqliteStore, trimWindow } from '../../src/store/index.js';
import { tempDir } from '../helpers/agentd.js';
import { task } from '../helpers/store.js';

describe('SqliteStore', () => {
  it('stores tasks durably and reads back exactly what was written', async () => {
    const dir = tempDir();
    const path = join(dir.path, 'db.sqlite');
    let store = new SqliteStore({ path });
    const record = task('x1', { idempotency_key: 'k1' });
    await store.insertTask(record);
    record.status = 'succeeded';
    record.result = 'done';
    record.usage = { input_tokens: 3, output_tokens: 4 };
    record.cost_usd = 0.5;
    record.error = { code: 'E', message: 'm', retryable: false };
    store.updateTask(record);
    assert.deepEqual(await store.getTask('x1'), record, 'reads see queued writes');
    await store.close();
    store = new SqliteStore({ path });
    assert.deepEqual(await store.getTask('x1'), record, 'a restart keeps everything');
    assert.deepEqual((await store.findTaskByIdempotencyKey('t1', 'k1'))?.id, 'x1');
    assert.equal(await store.findTaskByIdempotencyKey('t2', 'k1'), undefined, 'keys are per tenant');
    await store.close();
    dir.remove();
  });

  it('holds an unfinished task nobody awaits back for one commit, so a short run is written once', async () => {
    const dir = tempDir();
    const path = join(dir.path, 'held.db');
    const writer = new SqliteStore({ path, flushIntervalMs: 60_000 });
    // A second connection sees only what the writer committed (its own reads would flush all).
    const reader = new SqliteStore({ path });
    try {
      const short = task('short');
      const committed = writer.insertTask(short, false);
      short.status = 'running';
      writer.updateTask(short);
      writer.flushQueued();
      assert.equal(await reader.getTask('short'), undefined, 'held back at its first commit');
      short.status = 'succeeded';
      short.result = 'done';
      writer.updateTask(short);
      writer.flushQueued();
      assert.equal((await reader.getTask('short'))?.status, 'succeeded', 'written with its outcome');
      await committed;

      const long = task('long', { status: 'running' });
      writer.insertTask(long, false);
      writer.flushQueued();
      writer.flushQueued();
      assert.equal((await reader.getTask('long'))?.status, 'running', 'at the latest at the second commit');

      writer.insertTask(task('awaited', { status: 'running' }), true);
      writer.flushQueued();
      assert.equal((await reader.getTask('awaited'))?.status, 'running', 'a durable insert is never held');

      writer.insertTask(task('read', { status: 'running' }), false);
      await writer.getTask('anything');
      assert.equal((await reader.getTask('read'))?.status, 'running', 'a read commits everything first');
    } finally {
      await writer.close();
      await reader.close();
      dir.remove();
    }
  });
});

describe('trimWindow', () => {
  const row = (role: ChatMessage['role'], content: string, tokens = 1) => ({
    message: { role, content },
    tokens,
  });

  it('never starts a window with tool results whose call fell outside it', () => {
    const newestFirst = [
      row('assistant', 'answer'),
      row('tool', 'result'),
      row('assistant', 'call'),
      row('user', 'q'),
    ];
    assert.deepEqual(
      trimWindow(newestFirst, 2, 100).map((m) => m.content),
      ['answer'],
    );
    assert.deepEqual(
      trimWindow(newestFirst, 3, 100).map((m) => m.content),
      ['call', 'result', 'answer'],
    );
  });

  it('stops at the token budget', () => {
    const newestFirst = [row('assistant', 'a', 5), row('user', 'b', 5), row('assistant', 'c', 5)];
    assert.deepEqual(
      trimWindow(newestFirst, 10, 10).map((m) => m.content),
      ['b', 'a'],
    );
    assert.deepEqual(trimWindow(newestFirst, 10, 4), []);
  });
});

describe('SqliteStore session tails', () => {
  const msg = (role: ChatMessage['role'], content: string) => ({
    message: { role, content },
    tokens: 5,
    task_id: null,
  });

  it('serves windows from its cache in step with its own writes, caps and summaries', async () => {
    const store = new SqliteStore({ path: ':memory:', sessionCaps: { maxMessages: 4 } });
    await store.appendMessages('s', 't', [msg('user', 'u1'), msg('assistant', 'a1')]);
    assert.deepEqual(
      (await store.sessionWindow('s', 3, 100)).map((m) => m.content),
      ['u1', 'a1'],
    );
    await store.appendMessages('s', 't', [msg('user', 'u2'), msg('assistant', 'a2')]);
    assert.deepEqual(
      (await store.sessionWindow('s', 3, 100)).map((m) => m.content),
      ['a1', 'u2', 'a2'],
      'the cached tail grew with the append',
    );
    await store.appendMessages('s', 't', [msg('user', 'u3')]);
    assert.deepEqual(
      (await store.sessionWindow('s', 10, 100)).map((m) => m.content),
      ['a1', 'u2', 'a2', 'u3'],
      'the cap dropped u1 from storage and from the cache',
    );
    await store.close();
  });

  it('keeps answering a growing session from memory while its history fits the window', () => {
    const tails = new SessionTailCache();
    tails.fill('s', [], 0, true, undefined, 50);
    for (let turn = 1; turn <= 20; turn++) {
      const exchange = [msg('user', `u${turn}`), msg('assistant', `a${turn}`)];
      tails.append('s', exchange, 20);
      const window = tails.window('s', 50, 10_000);
      assert.equal(window?.length, 2 * turn, `turn ${turn}: answered from the tail`);
    }
    tails.append(
      's',
      Array.from({ length: 20 }, (_, i) => msg('user', `x${i}`)),
      200,
    );
    assert.equal(tails.window('s', 50, 10_000)?.length, 50, 'past the window: the newest 50');
    assert.equal(tails.window('s', 51, 10_000), undefined, 'a larger window than it keeps: a miss');
  });

  it('re-reads after another connection wrote to the same file', async () => {
    const dir = tempDir();
    const path = join(dir.path, 'shared.sqlite');
    const first = new SqliteStore({ path });
    const second = new SqliteStore({ path });
    await first.appendMessages('s', 't', [msg('user', 'one')]);
    assert.deepEqual(
      (await first.sessionWindow('s', 10, 100)).map((m) => m.content),
      ['one'],
    );
    await second.appendMessages('s', 't', [msg('assistant', 'two')]);
    await second.flush();
    assert.deepEqual(
      (await first.sessionWindow('s', 10, 100)).map((m) => m.content),
      ['one', 'two'],
    );
    await first.close();
    await second.close();
    dir.remove();
  });
});

describe('Sweeper', () => {
  it('deletes idle sessions past the TTL in batches and stops cleanly', async () => {
    const { Sweeper } = await import('../../src/store/index.js');
    const store = new SqliteStore({ path: ':memory:' });
    for (let i = 0; i < 3; i++)
      await store.appendMessages(`s${i}`, 't', [
        { message: { role: 'user', content: 'x' }, tokens: 1, task_id: null },
      ]);
    await store.flush();
    const sweeper = new Sweeper(
      60_000,
      (before, limit) => store.deleteIdleSessions(before, limit),
      () => {},
    );
    sweeper.start(1_000);
    assert.equal(sweeper.expired(Date.now() - 61_000), true);
    assert.equal(sweeper.expired(Date.now() - 59_000), false);
    assert.equal(await sweeper.sweep(), 0, 'nothing idle yet');
    assert.equal(await sweeper.sweep(Date.now() + 61_000), 3);
    assert.equal(await store.getSession('s0'), undefined);
    await sweeper.stop();
    await store.close();
  });

  it('sweeps in batches of 500 until a batch comes back short, and shares a sweep in progress', async () => {
    const { Sweeper } = await import('../../src/store/index.js');
    const calls: [number, number][] = [];
    let left = 1234;
    const sweeper = new Sweeper(
      1000,
      async (before, limit) => {
        calls.push([before, limit]);
        const deleted = Math.min(limit, left);
        left -= deleted;
        return deleted;
      },
      () => {},
    );
    const [a, b] = await Promise.all([sweeper.sweep(5000), sweeper.sweep(9000)]);
    assert.equal(a, 1234);
    assert.equal(b, 1234, 'the second call joined the first sweep');
    assert.deepEqual(calls, [
      [4000, 500],
      [4000, 500],
      [4000, 500],
    ]);
  });
});

describe('SqliteStore session caches against its SQL path', () => {
  /** A session row without its timestamps (each store stamps its own writes). */
  const untimed = (row: SessionRecord | undefined) =>
    row === undefined ? undefined : { ...row, created_at: 0, updated_at: 0 };

  for (const caps of [{}, { maxMessages: 40 }, { maxBytes: 600 }]) {
    it(`returns the same windows and sessions through random appends, usage, summaries and caps (${JSON.stringify(caps)})`, async () => {
      let seed = 42;
      const rand = (n: number) => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return seed % n;
      };
      // A long flush interval: reads must see queued writes without waiting for a commit.
      const cached = new SqliteStore({ path: ':memory:', sessionCaps: caps, flushIntervalMs: 60_000 });
      const plain = new SqliteStore({ path: ':memory:', sessionCaps: caps, tailCache: false });
      const roles: ChatMessage['role'][] = ['user', 'assistant', 'tool', 'assistant'];
      let n = 0;
      for (let op = 0; op < 800; op++) {
        const session = `s${rand(3)}`;
        const action = rand(14);
        if (action < 5) {
          const batch = Array.from({ length: 1 + rand(5) }, () => ({
            message: { role: roles[rand(4)]!, content: `m${n++}` },
            tokens: 1 + rand(20),
            task_id: null,
          }));
          await cached.appendMessages(session, 't', batch);
          await plain.appendMessages(session, 't', batch);
        } else if (action < 6) {
          const state = await plain.getSession(session);
          if (state === undefined) continue;
          const summary = {
            expectedThrough: state.summary_through,
            through: state.summary_through + rand(state.message_count - state.summary_through + 1),
            content: `summary ${op}`,
            tokens: 1 + rand(30),
            task_id: null,
          };
          assert.equal(await cached.saveSummary(session, summary), await plain.saveSummary(session, summary));
        } else if (action < 7) {
          const tokens = rand(100);
          // Eighths add up exactly, in any grouping (batches add usage up before storing it).
          cached.addSessionUsage(session, tokens, tokens / 8);
          plain.addSessionUsage(session, tokens, tokens / 8);
        } else if (action < 8) {
          await cached.flush();
        } else if (action < 10) {
          assert.deepEqual(
            untimed(await cached.getSession(session)),
            untimed(await plain.getSession(session)),
            `op ${op}: getSession(${session})`,
          );
        } else {
          const maxMessages = 1 + rand(30);
          const maxTokens = 10 + rand(300);
          assert.deepEqual(
            await cached.sessionWindow(session, maxMessages, maxTokens),
            await plain.sessionWindow(session, maxMessages, maxTokens),
            `op ${op}: window(${session}, ${maxMessages}, ${maxTokens})`,
          );
        }
      }
      await cached.close();
      await plain.close();
    });
  }

  it("answers a session's turns from memory without committing them early", async () => {
    const dir = tempDir();
    const path = join(dir.path, 'turns.sqlite');
    const store = new SqliteStore({ path, flushIntervalMs: 60_000 });
    const other = new SqliteStore({ path, tailCache: false });
    const exchange = (turn: number) => [
      { message: { role: 'user' as const, content: `u${turn}` }, tokens: 2, task_id: null },
      { message: { role: 'assistant' as const, content: `a${turn}` }, tokens: 2, task_id: null },
    ];
    for (let turn = 1; turn <= 3; turn++) {
      const session = await store.getSession('s');
      assert.equal(session?.message_count ?? 0, 2 * (turn - 1), `turn ${turn}: the queued turns count`);
      assert.equal((await store.sessionWindow('s', 50, 1_000)).length, 2 * (turn - 1));
      await store.appendMessages('s', 't', exchange(turn));
      store.addSessionUsage('s', 10, 0.5);
    }
    assert.equal(await other.getSession('s'), undefined, 'nothing committed before the batch is due');
    await store.flush();
    assert.equal((await other.getSession('s'))?.message_count, 6);
    assert.deepEqual(await other.getSession('s'), await store.getSession('s'));
    await store.close();
    await other.close();
    dir.remove();
  });

  it('stamps a session with the time its messages were appended, cached or stored', async () => {
    const dir = tempDir();
    const path = join(dir.path, 'stamps.sqlite');
    const store = new SqliteStore({ path, flushIntervalMs: 60_000 });
    const message = { message: { role: 'user' as const, content: 'x' }, tokens: 1, task_id: null };
    await store.appendMessages('s', 't', [message]);
    const first = await store.getSession('s');
    await store.appendMessages('s', 't', [message]);
    const cached = await store.getSession('s');
    await store.close();
    const reopened = new SqliteStore({ path });
    assert.deepEqual(await reopened.getSession('s'), cached, 'what was cached is what was stored');
    assert.ok(first !== undefined && cached !== undefined && cached.updated_at >= first.updated_at);
    await reopened.close();
    dir.remove();
  });
});
