import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { corpus, loadConversations } from '../../bench/memory-peers/data.js';
import type { DriverRequest, DriverResult } from '../../bench/memory-peers/driver.js';
import { MockLlmServer } from '../../src/llm/index.js';

const root = new URL('../..', import.meta.url).pathname;
const run = promisify(execFile);

describe('bench:memory:peers data', () => {
  const conversations = loadConversations();

  it('gives every subject distinct texts and refs, past the 2,760 LoCoMo turns', () => {
    const items = corpus(conversations, 6000);
    assert.equal(items.length, 6000);
    assert.equal(new Set(items.map((i) => i.text)).size, 6000);
    assert.equal(new Set(items.map((i) => i.ref)).size, 6000);
    assert.equal(items[0]!.ref, conversations[0]!.turns[0]!.ref);
  });

  it('names evidence by the refs of the turns it points to', () => {
    const refs = new Set(conversations.flatMap((c) => c.turns.map((t) => t.ref)));
    const evidence = conversations.flatMap((c) => c.questions.flatMap((q) => q.evidence));
    const known = evidence.filter((e) => refs.has(e)).length;
    assert.ok(known / evidence.length > 0.99, `${known} of ${evidence.length} evidence ids are turns`);
  });
});

describe('bench:memory:peers driver (agentd subject, against the mock)', () => {
  let mock: MockLlmServer;
  before(async () => {
    mock = await MockLlmServer.start();
  });
  after(() => mock.close());

  async function drive(request: Partial<DriverRequest>): Promise<DriverResult> {
    const full: DriverRequest = {
      subject: 'agentd',
      phase: 'load',
      count: 300,
      baseURL: mock.url,
      model: 'mock',
      dimensions: 384,
      batch: 100,
      warmup: 2,
      queries: 10,
      searchSeconds: 5,
      addSeconds: 120,
      k: 10,
      conversations: 1,
      ...request,
    };
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', join(root, 'bench/memory-peers/driver.ts'), JSON.stringify(full)],
      { cwd: root, timeout: 120_000 },
    );
    const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
    assert.ok(line, stdout);
    return JSON.parse(line.slice(7)) as DriverResult;
  }

  it('loads one user and times full top-k searches in both agentd modes', async () => {
    const result = await drive({ phase: 'load', count: 300 });
    assert.equal(result.count, 300);
    assert.equal(result.complete, true);
    assert.deepEqual(Object.keys(result.search), ['semantic', 'hybrid']);
    for (const figures of Object.values(result.search)) {
      assert.equal(figures.searches, 10);
      assert.equal(figures.short, 0);
    }
  });

  it('scores LoCoMo evidence recall per mode; hybrid finds more than vectors alone', async () => {
    const result = await drive({ phase: 'locomo' });
    assert.equal(result.count, loadConversations()[0]!.turns.length);
    assert.ok(result.questions > 100);
    const { semantic, hybrid } = result.recall as { semantic: number; hybrid: number };
    assert.ok(semantic > 0 && semantic <= 1 && hybrid <= 1);
    assert.ok(hybrid > semantic, `hybrid ${hybrid} vs semantic ${semantic}`);
  });
});
