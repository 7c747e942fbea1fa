import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LexicalIndex } from '../../src/memory/lexical-index.js';
import type { Selection } from '../../src/memory/scope-catalog.js';

const WORDS = ['tea', 'coffee', 'hiking', 'paris', 'meeting', 'budget', 'python', 'garden', 'piano', 'cat'];

describe('lexical index', () => {
  // Removing a document moves other postings around (the hole is filled by the list's last pair,
  // and the partition's last document takes the freed slot): after any mix of adds, replacements
  // and removals, every search answers exactly as an index built from the survivors alone.
  it('answers after adds, replacements and removals as an index built from the survivors', () => {
    let seed = 11;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const text = () =>
      Array.from({ length: 1 + random(8) }, () =>
        random(4) === 0 ? `rare${random(500)}` : WORDS[random(10)]!,
      ).join(' ');
    const index = new LexicalIndex();
    const live = new Map<number, { partition: string; text: string }>();
    for (let step = 0; step < 3000; step++) {
      const key = 1 + random(400);
      if (random(3) === 0) {
        index.remove(key);
        live.delete(key);
      } else {
        const partition = `p${random(3)}`;
        const t = text();
        index.add(key, 't', partition, t);
        live.set(key, { partition, text: t });
      }
    }
    const fresh = new LexicalIndex();
    for (const [key, { partition, text: t }] of [...live].sort((a, b) => a[0] - b[0]))
      fresh.add(key, 't', partition, t);
    assert.equal(index.size, live.size);
    const all: Selection = {
      kind: 'partitions',
      partitions: ['p0', 'p1', 'p2'],
      exclude: new Set(),
      size: live.size,
    };
    for (const query of [...WORDS, 'rare7 tea', 'paris garden rare42', 'rare499']) {
      const got = index.search('t', query, 1000, all);
      const want = fresh.search('t', query, 1000, all);
      assert.deepEqual(
        got.map((m) => m.key),
        want.map((m) => m.key),
        query,
      );
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]!.score - want[i]!.score) < 1e-9);
      const keys = [...live.keys()].filter((k) => k % 3 === 0);
      assert.deepEqual(
        index.search('t', query, 10, { kind: 'keys', keys }).map((m) => m.key),
        fresh.search('t', query, 10, { kind: 'keys', keys }).map((m) => m.key),
      );
    }
    for (const key of live.keys()) index.remove(key);
    assert.equal(index.size, 0);
    assert.deepEqual(index.search('t', 'tea', 10, all), []);
  });
});
