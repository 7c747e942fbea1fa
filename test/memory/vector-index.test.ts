import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VectorIndex } from '../../src/memory/index.js';

describe('vector index', () => {
  // usearch reads typed arrays from the start of their buffer: views into a larger buffer (as
  // batches of precomputed embeddings are) must still be stored and searched as themselves.
  for (const hnswThreshold of [Number.POSITIVE_INFINITY, 0]) {
    it(`finds vectors given as views of one buffer (${hnswThreshold === 0 ? 'HNSW' : 'exact'})`, () => {
      const d = 32;
      const n = 200;
      let seed = 1;
      const data = new Float32Array(n * d).map(() => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return seed / 2 ** 32 - 0.5;
      });
      const index = new VectorIndex({ dimensions: d, hnswThreshold, exactThreshold: 0 });
      for (let i = 0; i < n; i++) index.upsert(i + 1, data.subarray(i * d, (i + 1) * d));
      assert.equal(index.strategy(n), hnswThreshold === 0 ? 'hnsw' : 'exact');
      for (const row of [0, 5, 137, n - 1]) {
        const query = data.subarray(row * d, (row + 1) * d);
        const [best] = index.search(query, 1, undefined);
        assert.equal(best?.key, row + 1);
        assert.ok(Math.abs(best!.score - 1) < 1e-2);
        const [filtered] = index.search(query, 1, { kind: 'keys', keys: [row + 1, ((row + 1) % n) + 1] });
        assert.equal(filtered?.key, row + 1);
      }
    });
  }
});
