import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  HashingEmbedder,
  LongTermMemory,
  parseFacts,
  rememberFacts,
  SqliteMemoryStorage,
} from '../../src/memory/index.js';

describe('parseFacts', () => {
  it('reads the facts of a JSON answer, fenced or not, up to the maximum', () => {
    const answer = JSON.stringify({
      facts: [
        { text: ' Ada likes tea. ', importance: 0.8, tags: ['drink'] },
        { text: 'Ada lives in Lyon.', supersedes: 'm1' },
        { text: 'third' },
      ],
    });
    assert.deepEqual(parseFacts(answer, 2, 100), [
      { text: 'Ada likes tea.', supersedes: undefined, importance: 0.8, tags: ['drink'] },
      { text: 'Ada lives in Lyon.', supersedes: 'm1', importance: undefined, tags: undefined },
    ]);
    assert.equal(parseFacts(`\`\`\`json\n${answer}\n\`\`\``, 10, 100).length, 3);
    assert.deepEqual(parseFacts('{"facts": []}', 10, 100), []);
  });

  it('refuses answers that are not the JSON asked for, naming what is wrong', () => {
    assert.throws(() => parseFacts('Ada likes tea.', 10, 100), /not JSON/);
    assert.throws(() => parseFacts('{"memories": []}', 10, 100), /no `facts` array/);
    assert.throws(() => parseFacts('{"facts": [{"text": ""}]}', 10, 100), /facts\[0\]\.text/);
    assert.throws(() => parseFacts('{"facts": [{"text": "x", "importance": 2}]}', 10, 100), /importance/);
    assert.throws(() => parseFacts('{"facts": [{"text": "x", "supersedes": 3}]}', 10, 100), /supersedes/);
    assert.throws(() => parseFacts('{"facts": [{"text": "x", "tags": [1]}]}', 10, 100), /tags/);
    assert.throws(() => parseFacts(`{"facts": [{"text": "${'x'.repeat(101)}"}]}`, 10, 100), /at most 100/);
  });
});

describe('rememberFacts', () => {
  it('adds new facts, merges repeats and ignores supersedes outside the memories shown', async () => {
    const memory = await LongTermMemory.open({
      storage: new SqliteMemoryStorage({ path: ':memory:' }),
      embedder: new HashingEmbedder({ dimensions: 256 }),
    });
    const scope = { tenant_id: 't', user_id: 'ada' };
    const [other] = await memory.add({ tenant_id: 't', user_id: 'bob' }, [{ text: 'Bob lives in Rome.' }]);
    const first = await rememberFacts(
      memory,
      scope,
      [
        { text: 'Ada likes tea.' },
        { text: 'ada likes  TEA.' },
        { text: 'Ada lives in Lyon.', supersedes: other!.id },
      ],
      new Set(),
      { duplicateSimilarity: 0.92 },
      { source: 'extraction' },
    );
    assert.equal(
      first.added.length,
      2,
      'the repeat within the batch and the unknown supersedes are not special',
    );
    assert.deepEqual(first.superseded, []);
    assert.equal(
      (await memory.get('t', other!.id))?.text,
      'Bob lives in Rome.',
      "another user's memory is untouched",
    );
    const again = await rememberFacts(
      memory,
      scope,
      [{ text: 'Ada likes tea.', importance: 0.9 }],
      new Set(),
      { duplicateSimilarity: 0.92 },
      {},
    );
    assert.deepEqual(again.added, []);
    assert.deepEqual(again.merged, [first.added[0]]);
    assert.equal((await memory.get('t', first.added[0]!))?.importance, 0.9, 'the higher importance is kept');
    await memory.close();
  });
});
