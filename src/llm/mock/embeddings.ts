/**
 * Deterministic embeddings for the mock model: each word hashes to a few signed dimensions of a
 * vector that is then L2-normalised, so texts sharing words are close. Enough to exercise
 * embedding clients, dimension checks and vector search offline; not a language model.
 */
export function mockEmbedding(text: string, dimensions: number): Float32Array {
  const vector = new Float32Array(dimensions);
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  for (const word of words) {
    let h = 2166136261;
    for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 16777619);
    for (let k = 0; k < 3; k++) {
      h = Math.imul(h ^ (h >>> 15), 2246822507);
      vector[(h >>> 0) % dimensions]! += (h & 1) === 0 ? 1 : -1;
    }
  }
  let norm = 0;
  for (let i = 0; i < dimensions; i++) norm += vector[i]! * vector[i]!;
  if (norm > 0) {
    const scale = 1 / Math.sqrt(norm);
    for (let i = 0; i < dimensions; i++) vector[i]! *= scale;
  }
  return vector;
}

/** Base64 of little-endian float32s, as OpenAI returns with `encoding_format: "base64"`. */
export function toBase64(vector: Float32Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');
}
