import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { VectorIndex } from '../../src/memory/index.js';
import { BLOCK_ROWS } from '../../src/memory/vector-arena.js';

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

  // The graph walk runs on quantized vectors; the candidates it brings are re-scored against the
  // stored f32 vectors, so HNSW answers with exact similarities in exact order.
  for (const quantization of ['i8', 'f16'] as const) {
    it(`re-scores HNSW candidates exactly (${quantization})`, () => {
      const d = 64;
      const n = 500;
      let seed = 3;
      const data = new Float32Array(n * d).map(() => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return seed / 2 ** 32 - 0.5;
      });
      const hnsw = new VectorIndex({ dimensions: d, hnswThreshold: 0, exactThreshold: 0, quantization });
      const exact = new VectorIndex({ dimensions: d, hnswThreshold: Number.POSITIVE_INFINITY });
      for (let i = 0; i < n; i++) {
        hnsw.upsert(i + 1, data.subarray(i * d, (i + 1) * d));
        exact.upsert(i + 1, data.subarray(i * d, (i + 1) * d));
      }
      assert.equal(hnsw.strategy(n), 'hnsw');
      for (const row of [2, 77, 310]) {
        const query = data.slice(row * d, (row + 1) * d).map((v, i) => v + (i % 3) * 0.05);
        const approximate = hnsw.search(query, 5, undefined);
        const truth = exact.search(query, 5, undefined);
        assert.deepEqual(
          approximate.map((m) => m.key),
          truth.map((m) => m.key),
        );
        for (let i = 0; i < truth.length; i++)
          assert.ok(Math.abs(approximate[i]!.score - truth[i]!.score) < 1e-6);
      }
    });
  }

  // A partition past one storage block is searched block by block (exact) and indexed block by
  // block (HNSW): every key stays findable after adds across the boundary, updates and deletes.
  it('searches a partition larger than one storage block exactly and by HNSW', () => {
    const d = 8;
    const n = BLOCK_ROWS * 2 + 100;
    let seed = 5;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32 - 0.5;
    };
    const vectors = new Map<number, Float32Array>();
    const exact = new VectorIndex({ dimensions: d, hnswThreshold: Number.POSITIVE_INFINITY });
    const items = Array.from({ length: n }, (_, i) => {
      const vector = Float32Array.from({ length: d }, random);
      vectors.set(i + 1, vector);
      return { key: i + 1, vector, partition: 'u' };
    });
    exact.upsertMany(items);
    // Deletes in the first and middle blocks pull rows from the last one; updates rewrite in place.
    for (const key of [1, 2, BLOCK_ROWS, BLOCK_ROWS + 1, n - 5]) {
      exact.remove(key);
      vectors.delete(key);
    }
    for (const key of [3, BLOCK_ROWS + 7, n]) {
      const vector = Float32Array.from({ length: d }, random);
      exact.upsert(key, vector, 'u');
      vectors.set(key, vector);
    }
    assert.equal(exact.size, vectors.size);
    const hnsw = new VectorIndex({ dimensions: d, hnswThreshold: 0, exactThreshold: 0 });
    hnsw.upsertMany([...vectors].map(([key, vector]) => ({ key, vector, partition: 'u' })));
    const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    for (const key of [3, 4, BLOCK_ROWS - 1, BLOCK_ROWS + 7, BLOCK_ROWS * 2 + 1, n]) {
      const query = vectors.get(key)!;
      const truth = [...vectors]
        .map(([k, v]) => ({
          key: k,
          score: v.reduce((s, x, i) => s + x * query[i]!, 0) / norm(v) / norm(query),
        }))
        .sort((a, b) => b.score - a.score || a.key - b.key)
        .slice(0, 5);
      const found = exact.search(query, 5, {
        kind: 'partitions',
        partitions: ['u'],
        exclude: new Set(),
        size: vectors.size,
      });
      assert.deepEqual(
        found.map((m) => m.key),
        truth.map((m) => m.key),
      );
      assert.equal(exact.search(query, 1, { kind: 'keys', keys: [key, 4] })[0]?.key, key);
      assert.equal(hnsw.search(query, 1, undefined)[0]?.key, key);
    }
    assert.deepEqual(exact.search(vectors.get(4)!, 1, { kind: 'keys', keys: [1, 2] }), []);
  });

  // The default quantization changed from f16 to i8: an index saved with another quantization is
  // not loaded (the caller rebuilds it from the stored vectors); the same settings load it.
  it('loads a saved HNSW index only with the quantization it was built with', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentd-vector-index-'));
    try {
      const path = join(dir, 'index.usearch');
      const d = 16;
      const saved = new VectorIndex({ dimensions: d, hnswThreshold: 0, quantization: 'f16' });
      for (let i = 1; i <= 20; i++)
        saved.upsert(i, new Float32Array(d).fill(0.1).fill(1, i % d, (i % d) + 1));
      saved.save(path, { seq: 7, embedder: 'hashing', dimensions: d });
      assert.equal(new VectorIndex({ dimensions: d, hnswThreshold: 0 }).load(path, 'hashing'), undefined);
      const same = new VectorIndex({ dimensions: d, hnswThreshold: 0, quantization: 'f16' });
      assert.equal(same.load(path, 'hashing'), 7);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
