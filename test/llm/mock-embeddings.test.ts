import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MockLlmServer } from '../../src/llm/index.js';
import { call } from '../helpers/agentd.js';

describe('mock model embeddings', () => {
  let mock: MockLlmServer;
  before(async () => {
    mock = await MockLlmServer.start();
  });
  after(() => mock.close());

  const cosine = (a: number[], b: number[]) => a.reduce((sum, v, i) => sum + v * b[i]!, 0);

  it('returns deterministic unit vectors; texts sharing words are closer', async () => {
    const res = await call(mock.url, 'POST', '/embeddings', {
      model: 'mock-embed',
      input: ['the cat sat on the mat', 'a cat on a mat', 'quarterly revenue grew'],
    });
    assert.equal(res.status, 200);
    const [a, b, c] = res.body.data.map((d: { embedding: number[] }) => d.embedding);
    assert.equal(a.length, 384);
    assert.ok(Math.abs(cosine(a, a) - 1) < 1e-5);
    assert.ok(cosine(a, b) > cosine(a, c));
    const again = await call(mock.url, 'POST', '/embeddings', {
      model: 'mock-embed',
      input: 'the cat sat on the mat',
    });
    assert.deepEqual(again.body.data[0].embedding, a);
    assert.ok(res.body.usage.prompt_tokens > 0);
  });

  it('honours dimensions, base64 encoding and faults', async () => {
    const small = await call(mock.url, 'POST', '/embeddings', { model: 'mock-embed?dims=8', input: 'x' });
    assert.equal(small.body.data[0].embedding.length, 8);
    const sized = await call(mock.url, 'POST', '/embeddings', {
      model: 'm',
      input: 'x',
      dimensions: 16,
      encoding_format: 'base64',
    });
    assert.equal(Buffer.from(sized.body.data[0].embedding, 'base64').length, 64);
    const fault = await call(mock.url, 'POST', '/embeddings', { model: 'm?fault=429&times=1', input: 'x' });
    assert.equal(fault.status, 429);
    const bad = await call(mock.url, 'POST', '/embeddings', { model: 'm', input: 5 });
    assert.equal(bad.status, 400);
  });
});
