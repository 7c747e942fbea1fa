import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HashingEmbedder } from '../../src/memory/index.js';

/** Vectors of this embedder are stored under its name: a change in any feature would silently mix two spaces. */
const DOCUMENT = [
  -0.17485109, 0, -0.146377072, 0, -0.348103106, 0.17485109, 0.0774329528, -0.100863017, 0, 0, -0.17485109,
  -0.100863017, 0, -0.292754143, 6.31030384e-9, 0, 0, 0, 6.31030384e-9, 0, -0.349702179, 0, 0, -0.151090562,
  -0.17485109, 0, 0, 0.170137599, -0.0739880726, -0.100863017, 0, 0.17485109, 0, 0, 0, 0.243795201,
  -0.0774329528, 0, 0, 0, -0.17485109, -0.17485109, 0, 0, 0, -0.10119348, -0.17485109, 0.0739880726, 0, 0, 0,
  0, 0, -0.17485109, -0.17485109, -0.198611602, 0, 0.146377072, -0.100863017, -0.17485109, -0.17485109, 0,
  0.17485109, 0.0774329528,
];
const QUERY = [
  0, 0, -0.174431935, 0, -0.294626504, 0, -0.22156778, 0, 0, 0, -0.137724921, -0.341762364, 0, -0.441137761,
  0, 0, 0, 0, 0, 0, -0.22156778, 0, 0, 0, 0.22156778, 0, 0, -0.0188213605, -0.0700328425, -0.120194577, 0, 0,
  0, 0.22156778, 0, 0.174431935, 0.22156778, 0, 0, 0, 0, 0, 0, 0, 0, -0.0922738761, -9.77500858e-10,
  -0.359292686, 0, 0, 0, -0.22156778, 0, 0, 0, 0.22156778, 0, -0.0471358597, 0.101373218, 0, 0, 0, 0,
  0.0922738761,
];

const nine = (vector: Float32Array) => Array.from(vector, (x) => Number(x.toPrecision(9)));

describe('HashingEmbedder', () => {
  it('gives the vectors stored by earlier versions, for documents and for corpus-weighted queries', async () => {
    const embedder = new HashingEmbedder({ dimensions: 64 });
    const texts = [
      'Ada prefers green tea in the morning',
      'Painting and painted walls',
      'naïve café 😀 日本語',
      'the a of',
    ];
    for (const text of texts) embedder.observe(text, 1);
    assert.deepEqual(nine(embedder.embedDocument(texts[0]!)), DOCUMENT);
    assert.deepEqual(nine(await embedder.embedQuery('green tea painting')), QUERY);
  });

  it('forgets a removed text in its query weights', async () => {
    const embedder = new HashingEmbedder({ dimensions: 64 });
    const before = await embedder.embedQuery('green tea');
    embedder.observe('green tea and green apples', 1);
    embedder.observe('green tea and green apples', -1);
    assert.deepEqual(await embedder.embedQuery('green tea'), before);
  });
});
