import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FeatureCounts } from '../../src/memory/feature-counts.js';

describe('FeatureCounts', () => {
  it('counts each id once per document and agrees with a Map through growth and removals', () => {
    const counts = new FeatureCounts();
    const reference = new Map<number, number>();
    let seed = 1;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) | 0;
      return seed;
    };
    // Few distinct low bits: long probe runs, so removals must shift entries back correctly.
    const pool = Array.from({ length: 5000 }, (_, i) => (next() & ~0xff) | (i % 7));
    const documents: number[][] = [];
    for (let d = 0; d < 3000; d++) {
      const ids = Array.from({ length: 1 + (next() >>> 27) }, () => pool[(next() >>> 1) % pool.length]!);
      documents.push(ids);
      const removing = d % 3 === 2;
      const ids2 = removing ? documents[(next() >>> 1) % documents.length]! : ids;
      const delta = removing ? -1 : 1;
      counts.nextDocument();
      for (const id of ids2) counts.count(id, delta);
      for (const id of new Set(ids2)) {
        const value = (reference.get(id) ?? 0) + delta;
        if (value <= 0) reference.delete(id);
        else reference.set(id, value);
      }
    }
    assert.equal(counts.size, reference.size);
    for (const [id, value] of reference) assert.equal(counts.get(id), value);
    for (const id of pool) assert.equal(counts.get(id), reference.get(id) ?? 0);
  });

  it('never takes an absent id below zero', () => {
    const counts = new FeatureCounts();
    counts.nextDocument();
    counts.count(-5, -1);
    assert.equal(counts.get(-5), 0);
    assert.equal(counts.size, 0);
    counts.nextDocument();
    counts.count(-5, 1);
    counts.count(-5, 1);
    assert.equal(counts.get(-5), 1);
  });
});
