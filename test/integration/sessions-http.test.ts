import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MockLlmServer } from '../../src/llm/index.js';
import { call, readSse, startAgentd, type TestAgentd } from '../helpers/agentd.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The events of a finished task, read over HTTP. */
async function eventsOf(agentd: TestAgentd, taskId: string) {
  const { events } = await readSse(`${agentd.url}/v1/tasks/${taskId}/events`);
  return events;
}

async function messagesOf(agentd: TestAgentd, sessionId: string) {
  return call(agentd.url, 'GET', `/v1/sessions/${sessionId}/messages?limit=100`);
}

/** A user turn long enough to fill the small test context quickly (~54 tokens). */
const turn = (i: number) => `turn ${i}: ${'words about the trip to the mountains '.repeat(5)}`;

describe('Sessions over HTTP', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;

  before(async () => {
    mock = await MockLlmServer.start();
    agentd = await startAgentd({
      config: {
        providers: { mock: { type: 'mock', base_url: mock.url } },
        models: {
          chat: { provider: 'mock', name: 'chat', context_window: 400 },
          'chat-tools': { provider: 'mock', name: 'chat', context_window: 440 },
          'chat-tiny': { provider: 'mock', name: 'chat', context_window: 120 },
          summariser: { provider: 'mock', name: 'summariser' },
          extractor: { provider: 'mock', name: 'extractor' },
          'extractor-slow': { provider: 'mock', name: 'extractor?latency_ms=3000' },
        },
        tiers: { small: ['chat'], medium: ['chat'], large: ['chat'] },
        agents: {
          // Compacts past 25 % of 400 tokens, keeping the newest 2 messages verbatim.
          compacting: {
            model: 'chat',
            session: { compaction: { threshold: 0.25, keep_messages: 2, model: 'summariser' } },
          },
          // Compacts past 44 tokens, keeping at most 2 messages within 22 tokens.
          'compacting-tools': {
            model: 'chat-tools',
            tools: ['calculator'],
            session: { compaction: { threshold: 0.1, keep_messages: 2, model: 'summariser' } },
          },
          // Compacts past 60 tokens; summarises at most 60 tokens of messages per request.
          'compacting-tiny': {
            model: 'chat-tiny',
            session: { compaction: { threshold: 0.5, keep_messages: 2, model: 'summariser' } },
          },
          extracting: { model: 'chat', memory: { extract: { model: 'extractor' } } },
          'extracting-slow': {
            model: 'chat',
            timeout_ms: 400,
            memory: { extract: { model: 'extractor-slow', scope: 'tenant' } },
          },
          plain: { model: 'chat' },
        },
      },
    });
  });
  after(async () => {
    await agentd.close();
    await mock.close();
  });

  describe('compaction', () => {
    it('summarises older turns once the session passes its share of the context, keeping the originals', async () => {
      mock.enqueue('summariser', { content: 'The user is planning a mountain trip.' });
      const run = (i: number) =>
        call(agentd.url, 'POST', '/v1/agents/compacting/run', { input: turn(i), session_id: 'c1' });
      const first = await run(1);
      const second = await run(2);
      assert.equal(first.body.status, 'succeeded');
      assert.ok(!(await eventsOf(agentd, second.body.id)).some((e) => e.event === 'session.compacted'));
      const third = await run(3);
      assert.equal(third.body.status, 'succeeded');
      const compacted = (await eventsOf(agentd, third.body.id)).find((e) => e.event === 'session.compacted');
      assert.ok(compacted, 'the third task compacted the session');
      assert.equal(compacted.data.applied, true);
      // keep_messages is 2, but kept messages must fit half the trigger (50 tokens): only the
      // newest answer does, so the summary covers u1, a1 and u2.
      assert.equal(compacted.data.summarised_through, 3);
      assert.equal(compacted.data.model, 'summariser');
      assert.equal(mock.requests('summariser'), 1);

      const listed = await messagesOf(agentd, 'c1');
      assert.deepEqual(
        listed.body.data.map((m: { seq: number; kind: string; role: string }) => [m.seq, m.kind, m.role]),
        [
          [1, 'message', 'user'],
          [2, 'message', 'assistant'],
          [3, 'message', 'user'],
          [4, 'message', 'assistant'],
          [5, 'summary', 'system'],
          [6, 'message', 'user'],
          [7, 'message', 'assistant'],
        ],
        'originals stay stored; the summary is a message of its own',
      );
      const window = await agentd.runtime.store.sessionWindow('c1', 50, 8000);
      assert.deepEqual(
        window.map((m) => m.content),
        [
          'Summary of the earlier conversation:\nThe user is planning a mountain trip.',
          listed.body.data[3].content,
          turn(3),
          listed.body.data[6].content,
        ],
        'the window starts from the summary',
      );
    });

    it('compacts once when concurrent tasks of one session start past the threshold', async () => {
      for (let i = 1; i <= 3; i++) {
        const res = await call(agentd.url, 'POST', '/v1/agents/plain/run', {
          input: turn(i),
          session_id: 'c2',
        });
        assert.equal(res.body.status, 'succeeded');
      }
      mock.enqueue('summariser', { content: 'Concurrent summary.' });
      const before = mock.requests('summariser');
      const finished = await Promise.all(
        [4, 5, 6].map((i) =>
          call(agentd.url, 'POST', '/v1/tasks', {
            agent: 'compacting',
            input: turn(i),
            session_id: 'c2',
            wait: 30_000,
          }),
        ),
      );
      assert.deepEqual(
        finished.map((res) => res.body.status),
        ['succeeded', 'succeeded', 'succeeded'],
      );
      assert.equal(mock.requests('summariser') - before, 1, 'one summary for the three tasks');
      const listed = await messagesOf(agentd, 'c2');
      const kinds = listed.body.data.map((m: { kind: string }) => m.kind);
      assert.equal(kinds.filter((k: string) => k === 'summary').length, 1);
      assert.equal(kinds.length, 6 + 6 + 1, 'no message lost');
      const window = await agentd.runtime.store.sessionWindow('c2', 50, 8000);
      assert.equal(window[0]?.content, 'Summary of the earlier conversation:\nConcurrent summary.');
    });

    it('never separates a tool call from its results', async () => {
      // Each task stores 4 messages of 41 tokens: the question (7), the calculator call (13), its
      // result (12) and the answer (9).
      const run = (input: string) =>
        call(agentd.url, 'POST', '/v1/agents/compacting-tools/run', { input, session_id: 'c4' });
      assert.equal((await run('What is 6*7?')).body.result, 'The result is 42.');
      assert.equal((await run('What is 5*5?')).body.result, 'The result is 25.');
      mock.enqueue('summariser', { content: 'Two multiplications.' });
      const third = await run('What is 2+2?');
      const compacted = (await eventsOf(agentd, third.body.id)).find((e) => e.event === 'session.compacted');
      assert.ok(compacted);
      // The newest two messages are the second result and answer; the call they belong to stays too.
      assert.equal(compacted.data.summarised_through, 5);
      const window = await agentd.runtime.store.sessionWindow('c4', 50, 8000);
      assert.deepEqual(
        window.map((m) => m.role),
        ['system', 'assistant', 'tool', 'assistant', 'user', 'assistant', 'tool', 'assistant'],
      );
      assert.equal(window[1]?.tool_calls?.[0]?.function.name, 'calculator');
    });

    it('catches up a long session over several tasks, each summary fitting the context', async () => {
      for (let i = 1; i <= 3; i++)
        await call(agentd.url, 'POST', '/v1/agents/plain/run', { input: turn(i), session_id: 'c5' });
      mock.enqueue('summariser', { content: 'First part.' }, { content: 'Second part.' });
      const run = (i: number) =>
        call(agentd.url, 'POST', '/v1/agents/compacting-tiny/run', { input: turn(i), session_id: 'c5' });
      const first = (await eventsOf(agentd, (await run(4)).body.id)).find(
        (e) => e.event === 'session.compacted',
      );
      assert.equal(
        first?.data.summarised_through,
        1,
        'only the first turn (54 tokens) fits half the context',
      );
      const second = (await eventsOf(agentd, (await run(5)).body.id)).find(
        (e) => e.event === 'session.compacted',
      );
      assert.ok(second !== undefined && second.data.summarised_through > 1, 'the next task continues');
    });

    it('reports a failed compaction and still answers', async () => {
      for (let i = 1; i <= 3; i++)
        await call(agentd.url, 'POST', '/v1/agents/plain/run', { input: turn(i), session_id: 'c3' });
      mock.enqueue('summariser', { content: '' });
      const res = await call(agentd.url, 'POST', '/v1/agents/compacting/run', {
        input: turn(4),
        session_id: 'c3',
      });
      assert.equal(res.body.status, 'succeeded');
      const failed = (await eventsOf(agentd, res.body.id)).find(
        (e) => e.event === 'session.compaction_failed',
      );
      assert.ok(failed);
      assert.match(failed.data.message, /empty summary/);
      assert.ok(
        !(await messagesOf(agentd, 'c3')).body.data.some((m: { kind: string }) => m.kind === 'summary'),
      );
    });
  });

  describe('fact extraction', () => {
    it('adds extracted facts to the user, merges duplicates and supersedes explicitly', async () => {
      mock.enqueue('extractor', {
        content: JSON.stringify({
          facts: [
            { text: 'The user drinks green tea every morning.', importance: 0.6, tags: ['drink'] },
            { text: 'The user lives in Lyon.' },
          ],
        }),
      });
      const first = await call(agentd.url, 'POST', '/v1/agents/extracting/run', {
        input: 'I live in Lyon and start every day with green tea.',
        user_id: 'u1',
      });
      assert.equal(first.body.status, 'succeeded');
      const extracted = (await eventsOf(agentd, first.body.id)).find((e) => e.event === 'memory.extracted');
      assert.ok(extracted);
      assert.equal(extracted.data.added.length, 2);
      const listed = await call(agentd.url, 'GET', '/v1/memories?user_id=u1');
      const byText = new Map<string, string>(
        listed.body.data.map((m: { id: string; text: string }) => [m.text, m.id]),
      );
      const tea = byText.get('The user drinks green tea every morning.')!;
      const lyon = byText.get('The user lives in Lyon.')!;
      assert.ok(tea && lyon);
      assert.equal(listed.body.data.find((m: { id: string }) => m.id === tea).metadata.source, 'extraction');

      mock.enqueue('extractor', {
        content: `\`\`\`json\n${JSON.stringify({
          facts: [
            { text: 'the user drinks green tea every morning.', tags: ['morning'] },
            { text: 'The user drinks green tea every morning!' },
            { text: 'The user lives in Paris.', supersedes: lyon },
          ],
        })}\n\`\`\``,
      });
      const second = await call(agentd.url, 'POST', '/v1/agents/extracting/run', {
        input: 'I moved to Paris; still green tea every morning.',
        user_id: 'u1',
      });
      const merged = (await eventsOf(agentd, second.body.id)).find((e) => e.event === 'memory.extracted');
      assert.ok(merged);
      assert.deepEqual(merged.data.added, [], 'nothing new');
      assert.deepEqual(merged.data.merged, [tea, tea], 'the same text, and a near-identical one');
      assert.deepEqual(merged.data.superseded, [lyon]);
      const after = await call(agentd.url, 'GET', '/v1/memories?user_id=u1');
      assert.equal(after.body.data.length, 2, 'no duplicate was added');
      const teaNow = await call(agentd.url, 'GET', `/v1/memories/${tea}`);
      assert.deepEqual(teaNow.body.tags.sort(), ['drink', 'morning'], 'merged tags');
      const history = await call(agentd.url, 'GET', `/v1/memories/${lyon}/history`);
      const update = history.body.data.find((h: { action: string }) => h.action === 'update');
      assert.equal(update.old.text, 'The user lives in Lyon.');
      assert.equal(update.new.text, 'The user lives in Paris.');
    });

    it('refuses an answer that is not the JSON asked for, and the task still succeeds', async () => {
      mock.enqueue('extractor', { content: 'Sure! The user likes tea.' });
      const res = await call(agentd.url, 'POST', '/v1/agents/extracting/run', {
        input: 'hello',
        user_id: 'u2',
      });
      assert.equal(res.body.status, 'succeeded');
      const failed = (await eventsOf(agentd, res.body.id)).find(
        (e) => e.event === 'memory.extraction_failed',
      );
      assert.ok(failed);
      assert.match(failed.data.message, /not JSON/);
      assert.equal((await call(agentd.url, 'GET', '/v1/memories?user_id=u2')).body.data.length, 0);
    });

    it('keeps the answer when the task times out during extraction', async () => {
      const res = await call(agentd.url, 'POST', '/v1/agents/extracting-slow/run', { input: 'hello' });
      assert.equal(res.body.status, 'succeeded');
      assert.ok(res.body.result.length > 0);
      const failed = (await eventsOf(agentd, res.body.id)).find(
        (e) => e.event === 'memory.extraction_failed',
      );
      assert.equal(failed?.data.code, 'AGENTD_TIMEOUT');
    });

    it('extracts nothing for a task without a user (user scope)', async () => {
      const before = mock.requests('extractor');
      const res = await call(agentd.url, 'POST', '/v1/agents/extracting/run', { input: 'hello' });
      const skipped = (await eventsOf(agentd, res.body.id)).find((e) => e.event === 'memory.extracted');
      assert.equal(skipped?.data.skipped, 'no user');
      assert.equal(mock.requests('extractor'), before);
    });
  });
});

describe('Session lifetime and caps over HTTP', () => {
  let mock: MockLlmServer;
  let agentd: TestAgentd;

  before(async () => {
    mock = await MockLlmServer.start();
    agentd = await startAgentd({
      config: {
        providers: { mock: { type: 'mock', base_url: mock.url } },
        models: { chat: { provider: 'mock', name: 'chat' } },
        tiers: { small: ['chat'], medium: ['chat'], large: ['chat'] },
        sessions: { idle_ttl_ms: 1000, max_messages: 4 },
        agents: { plain: { model: 'chat' } },
      },
    });
  });
  after(async () => {
    await agentd.close();
    await mock.close();
  });

  const run = (input: string, session: string) =>
    call(agentd.url, 'POST', '/v1/agents/plain/run', { input, session_id: session });

  it('keeps only the newest max_messages messages of a session', async () => {
    for (let i = 1; i <= 3; i++) await run(`q${i}`, 'capped');
    const listed = await messagesOf(agentd, 'capped');
    assert.deepEqual(
      listed.body.data
        .map((m: { seq: number; content: string }) => [m.seq, m.content])
        .filter((_: unknown, i: number) => i % 2 === 0),
      [
        [3, 'q2'],
        [5, 'q3'],
      ],
    );
    assert.equal(listed.body.data.length, 4);
  });

  it('deletes a session and its messages on request', async () => {
    await run('forget me', 'doomed');
    assert.equal((await call(agentd.url, 'DELETE', '/v1/sessions/doomed')).body.deleted, true);
    assert.equal((await messagesOf(agentd, 'doomed')).status, 404);
    assert.equal((await call(agentd.url, 'DELETE', '/v1/sessions/doomed')).status, 404);
  });

  it('deletes sessions idle past the TTL; an expired session starts again as new', async () => {
    await run('remember me', 'ttl-swept');
    await run('remember me too', 'ttl-lazy');
    await run('and me', 'ttl-read');
    await sleep(1100);
    assert.equal((await messagesOf(agentd, 'ttl-read')).status, 404, 'expired: gone even before a sweep');
    // Expired but not swept yet: the next task finds no history and starts the session anew.
    const again = await run('who am I?', 'ttl-lazy');
    assert.equal(again.body.status, 'succeeded');
    const lazy = await messagesOf(agentd, 'ttl-lazy');
    assert.deepEqual(lazy.body.data.map((m: { seq: number; content: string }) => [m.seq, m.content])[0], [
      1,
      'who am I?',
    ]);
    assert.equal(lazy.body.data.length, 2);
    assert.ok((await agentd.runtime.sweepSessions()) >= 1);
    assert.equal((await messagesOf(agentd, 'ttl-swept')).status, 404, 'swept with its messages');
    assert.equal((await messagesOf(agentd, 'ttl-lazy')).status, 200, 'used within the TTL: kept');
    assert.equal(await agentd.runtime.store.getSession('ttl-swept'), undefined);
  });
});
